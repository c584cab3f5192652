/**
 * The API's wire types, as the client sees them: the server's answers and frames from its own schemas
 * (wire.ts), and the client's results, which fill in what the wire leaves out (e.g. `duplicates: []`).
 */
import type { Static } from "typebox";
import type {
  BrowsePageAnswer,
  BrowseQuery,
  DeadLetterPageAnswer,
  DeliveredMessage,
  EnqueueBody,
  RedriveAnswer,
  ServerFrame,
  ServerFrames,
  TableAnswer,
  TableListAnswer,
  TableStatsAnswer,
  WebhookAnswer,
  WebhookBody,
  WebhookHealthAnswer,
} from "../wire.js";

/** Table options in milliseconds (all optional on create; the server fills defaults). A type only: the
 * client loads no server code. */
import type { TableOptions } from "../options.js";
export type { TableOptions };

export type TableStats = TableStatsAnswer;

/** A table's name, options and stats; `webhooks`, the health of its webhook subscribers (absent from servers without webhooks). */
export type TableDescription = TableAnswer;

/** A page of the tables (listTablesPage): `stats` absent when asked without; `next` when there are more. */
export type TablePage = TableListAnswer;

/**
 * A message to publish (the enqueue body's item, wire.ts): `id` a decimal string (the server makes one when
 * absent; enqueue is idempotent by id), `priority` 0..255 (lower first, default 50), `delayMs` or
 * `deliverAt` (epoch ms; not both), and the payload, any JSON value.
 */
export type PublishMessage<T = unknown> = Omit<EnqueueBody["messages"][number], "payload"> & { payload: T };

export interface PublishResult {
  /** In request order (including duplicates). */
  ids: string[];
  /** Ids that already existed and were not inserted again. */
  duplicates: string[];
}

/** The first frame on a subscription. */
export type SubscribedInfo = Omit<Static<typeof ServerFrames.subscribed>, "type">;

/** A message as it arrives in a `messages` frame. */
export type WireMessage = DeliveredMessage;

/** A frame's correlation value: the server answers a frame that has one. */
export type Ref = string | number;

export type { ServerFrame };

/**
 * The frames a client sends, from the server's own schemas (wire.ts). Plain-id frames carry no ref (the fast
 * path); receipt frames carry one so stale receipts are reported.
 */
export type { ClientFrame } from "../wire.js";

/** The answer to a fenced operation over HTTP: receipts refused because the message was delivered again since. */
export interface AckReceiptsResult {
  acked: number;
  stale: string[];
}
export interface PostponeReceiptsResult {
  postponed: number;
  stale: string[];
}
export interface FailReceiptsResult {
  failed: number;
  stale: string[];
}
export interface ExtendResult {
  /** Messages whose due time moved. */
  extended: number;
  stale: string[];
  /** Receipts of current deliveries already due at or after now + byMs: left as they were. */
  unchanged: string[];
}

/** Receipts the server refused because their message was delivered again since (the `stale` event). */
export interface StaleInfo {
  kind: "ack" | "postpone" | "extend";
  receipts: string[];
}

/** A message moved to the dead-letter table after maxAttempts deliveries. */
export type DeadMessage = DeadLetterPage["messages"][number];

export type DeadLetterPage = DeadLetterPageAnswer;

export type RedriveResult = RedriveAnswer;

/** What to browse: `state` (absent: every unacked message), `order` ("next", the default, or "newest"), `limit` 1..1000 (100), `cursor`. */
export type BrowseOptions = Omit<BrowseQuery, "limit"> & { limit?: number };

/** A page of browsed messages; pass `next` back as `cursor` (with the same `order`) for the following page. */
export type BrowsePage = BrowsePageAnswer;

/** An unacked message as browsing shows it: read, not delivered (no receipt; nothing about it changed). */
export type BrowsedMessage = BrowsePage["messages"][number];

/** What PUT /v1/tables/{table}/webhooks/{name} takes (a full replace: a secret left out is removed). */
export type WebhookSettings = WebhookBody;

/** A webhook's health, as a table's description lists it. */
export type WebhookHealth = WebhookHealthAnswer;

/** A webhook as the server shows it: its settings without the secret, and its health. */
export type Webhook = WebhookAnswer;
