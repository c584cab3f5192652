/** The types the webhook parts share: what a receiver POSTs to and needs, and what the API shows. */
import type { FencedResult, WebhookConfig } from "../store/types.js";
import type { WebhookAnswer, WebhookBody, WebhookHealthAnswer } from "../wire.js";
import type { Delivery } from "../model/messages.js";

/** Where a receiver POSTs, and how: a WebhookConfig without its bookkeeping. */
export type WebhookTarget = Omit<WebhookConfig, "createdAt" | "updatedAt">;

/** What a receiver needs of its table's manager. */
export interface TableAccess {
  /** Acks delivered messages (the manager's ack). */
  ack(ids: readonly string[]): Promise<number>;
  /** Hands held messages back to the table, due now. */
  release(ids: readonly string[]): Promise<number>;
  /**
   * Keeps held messages leased: not due before now + byMs where the delivery (id and the epoch it was
   * sent with) is still current; the others come back stale.
   */
  extend(deliveries: Delivery[], byMs: number): Promise<FencedResult>;
  /** The table's ack wait now: how far ahead leases are kept. */
  ackWaitMs(): number;
  /** The table is paused: batches held are not POSTed until it is resumed. */
  paused(): boolean;
}

/** Counts kept per webhook across its receivers' lifetimes (the registry owns them; metrics read them). */
export interface WebhookCounters {
  /** POSTs answered 2xx, and the messages in them. */
  deliveredBatches: number;
  deliveredMessages: number;
  /** POSTs that failed (non-2xx, timeout, network error). */
  failedBatches: number;
}

export function newCounters(): WebhookCounters {
  return { deliveredBatches: 0, deliveredMessages: 0, failedBatches: 0 };
}

export type WebhookState = WebhookHealthAnswer["state"];

/** What GET /v1/tables/{t}(/webhooks) shows of a webhook's health (wire.ts). Never the secret. */
export type WebhookStatus = Omit<WebhookHealthAnswer, "name">;

/** What PUT asks for; the rest has defaults. */
export type WebhookInput = WebhookBody;

/** A webhook as the API shows it: its configuration without the secret, and its health. */
export type WebhookView = WebhookAnswer;

/** A webhook's health in a table's description (no URL: describing a table needs less than admin). */
export type WebhookSummary = WebhookHealthAnswer;

/** For the metrics: every configured webhook with its counters and health. */
export interface WebhookReport {
  table: string;
  name: string;
  counters: WebhookCounters;
  status: WebhookStatus;
}
