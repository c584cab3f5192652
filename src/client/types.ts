/** The API's wire types, as the client sees them. */

/** Table options in milliseconds (all optional on create; the server fills defaults). A type only: the
 * client loads no server code. */
import type { TableOptions } from "../options.js";
export type { TableOptions };

export interface TableStats {
  ready: number;
  delayed: number;
  inFlight: number;
  acked: number;
  /** Messages in the dead-letter table. */
  dead: number;
  receivers: number;
  cached: number;
}

export interface TableDescription {
  name: string;
  options: TableOptions;
  stats: TableStats;
  /** The health of the table's webhook subscribers (absent from servers without webhooks). */
  webhooks?: WebhookHealth[];
}

export interface PublishMessage<T = unknown> {
  /** Decimal string; the server generates one when absent. Enqueue is idempotent by id. */
  id?: string;
  /** 0..255, lower first; default 50. */
  priority?: number;
  delayMs?: number;
  /** Epoch milliseconds; wins over delayMs. */
  deliverAt?: number;
  /** Any JSON value. */
  payload: T;
}

export interface PublishResult {
  /** In request order (including duplicates). */
  ids: string[];
  /** Ids that already existed and were not inserted again. */
  duplicates: string[];
}

/** The first frame on a subscription. */
export interface SubscribedInfo {
  table: string;
  batchSize: number;
  ackWaitMs: number;
  maxInFlight: number;
}

/** A message as it arrives in a `messages` frame. */
export interface WireMessage {
  id: string;
  priority: number;
  epoch: number;
  /** Names this delivery (id and epoch); opaque. Acks, postpones and extensions by receipt are fenced. */
  receipt: string;
  payload: unknown;
}

/** A frame's correlation value: the server answers a frame that has one. */
export type Ref = string | number;

export type ServerFrame =
  | ({ type: "subscribed" } & SubscribedInfo)
  | { type: "messages"; messages: WireMessage[] }
  | { type: "acked"; ref: Ref; acked: number; stale?: string[] }
  | { type: "postponed"; ref: Ref; postponed: number; stale?: string[] }
  | { type: "extended"; ref: Ref; extended: number; stale: string[] }
  | { type: "error"; code: string; message: string; ref?: Ref };

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
export interface ExtendResult {
  extended: number;
  stale: string[];
}

/** Receipts the server refused because their message was delivered again since (the `stale` event). */
export interface StaleInfo {
  kind: "ack" | "postpone" | "extend";
  receipts: string[];
}

/** A message moved to the dead-letter table after maxAttempts deliveries. */
export interface DeadMessage {
  id: string;
  priority: number;
  epoch: number;
  payload: unknown;
  reason: string;
  /** Epoch ms. */
  deadAt: number;
}

export interface DeadLetterPage {
  messages: DeadMessage[];
  next?: string;
}

export interface RedriveResult {
  redriven: number;
  /** Ids that are not dead letters of the table. */
  missing: string[];
  /** Dead ids in use in the table again (re-enqueued since): left dead. */
  conflicts: string[];
}

/** What PUT /v1/tables/{table}/webhooks/{name} takes (a full replace: a secret left out is removed). */
export interface WebhookSettings {
  /** http: or https: */
  url: string;
  /** 1..1000, default 10 (the table's batchSize caps it too). */
  batchSize?: number;
  /** 100..120000, default 10000. */
  timeoutMs?: number;
  /** HMAC-SHA256 key: requests then carry `x-tablemq-signature: sha256=<hex>`. Never returned. */
  secret?: string;
}

/** A webhook's health, as a table's description lists it. */
export interface WebhookHealth {
  name: string;
  /** "down" after a failed POST until the recoverer's retry succeeds. */
  state: "up" | "down";
  lastError: string | null;
  lastErrorAt: number | null;
  lastDeliveredAt: number | null;
  failures: number;
  nextRetryAt: number | null;
  /** Messages it holds: sent to it and not yet acked. */
  held: number;
}

/** A webhook as the server shows it: its settings without the secret, and its health. */
export interface Webhook extends WebhookHealth {
  url: string;
  batchSize: number;
  timeoutMs: number;
  hasSecret: boolean;
  createdAt: number;
  updatedAt: number;
}
