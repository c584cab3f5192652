/** JSON schemas shared by the routes: fastify validates with them before a handler runs. */
import { MESSAGE_ID_PATTERN } from "../ids.js";
import { MAX_DELAY_MS, MAX_EPOCH_MS, PRIORITY, TABLE_NAME_PATTERN } from "../model/limits.js";
import { RECEIPT_PATTERN } from "../receipts.js";


export const ID_PATTERN = MESSAGE_ID_PATTERN;

export const tableParams = {
  type: "object",
  required: ["table"],
  additionalProperties: false,
  properties: { table: { type: "string", pattern: TABLE_NAME_PATTERN } },
} as const;

export const idList = {
  type: "array",
  minItems: 1,
  items: { type: "string", pattern: ID_PATTERN },
} as const;

export const receiptList = {
  type: "array",
  minItems: 1,
  items: { type: "string", pattern: RECEIPT_PATTERN },
} as const;

export const delayMs = { type: "integer", minimum: 0, maximum: MAX_DELAY_MS } as const;

export const tableOptionsBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    ackWaitMs: { type: "integer", minimum: 1, maximum: MAX_DELAY_MS },
    minBackoffMs: { type: "integer", minimum: 0, maximum: MAX_DELAY_MS },
    maxBackoffMs: { type: "integer", minimum: 0, maximum: MAX_DELAY_MS },
    purgeAfterMs: { type: "integer", minimum: 0, maximum: MAX_DELAY_MS },
    batchSize: { type: "integer", minimum: 1, maximum: 10_000 },
    cacheSize: { type: "integer", minimum: 1, maximum: 10_000_000 },
    pollIntervalMs: { type: "integer", minimum: 1, maximum: MAX_DELAY_MS },
    maxAttempts: { type: "integer", minimum: 0, maximum: 1_000_000 },
  },
} as const;

export const enqueueBody = {
  type: "object",
  required: ["messages"],
  additionalProperties: false,
  properties: {
    messages: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        required: ["payload"],
        additionalProperties: false,
        properties: {
          id: { type: "string", pattern: ID_PATTERN },
          priority: { type: "integer", minimum: PRIORITY.min, maximum: PRIORITY.max },
          delayMs,
          deliverAt: { type: "integer", minimum: 0, maximum: MAX_EPOCH_MS },
          payload: {},
        },
      },
    },
  },
} as const;

/** `ids`, `receipts` or both; the handler requires one of them (with a message that names them). */
export const ackBody = {
  type: "object",
  additionalProperties: false,
  properties: { ids: idList, receipts: receiptList },
} as const;

export const postponeBody = {
  type: "object",
  additionalProperties: false,
  properties: { ids: idList, receipts: receiptList, delayMs },
} as const;

export const extendBody = {
  type: "object",
  required: ["receipts", "byMs"],
  additionalProperties: false,
  properties: { receipts: receiptList, byMs: { type: "integer", minimum: 1, maximum: MAX_DELAY_MS } },
} as const;

export const deadQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    limit: { type: "string", pattern: "^([1-9][0-9]{0,2}|1000)$" },
    cursor: { type: "string", pattern: "^[0-9]{1,20}:(0|[1-9][0-9]{0,19})$" },
  },
} as const;

export const redriveBody = {
  type: "object",
  additionalProperties: false,
  properties: { ids: idList, all: { type: "boolean" } },
} as const;

export const subscribeQuery = {
  type: "object",
  additionalProperties: false,
  properties: { maxInFlight: { type: "string", pattern: "^[1-9][0-9]{0,6}$" } },
} as const;

export interface EnqueueBody {
  messages: Array<{ id?: string; priority?: number; delayMs?: number; deliverAt?: number; payload: unknown }>;
}
export interface IdsBody {
  ids?: string[];
  receipts?: string[];
  delayMs?: number;
}
export interface RedriveBody {
  ids?: string[];
  all?: boolean;
}
export interface ExtendBody {
  receipts: string[];
  byMs: number;
}

export const WEBHOOK_NAME_PATTERN = "^[a-z0-9][a-z0-9_.-]{0,62}$";

export const webhookParams = {
  type: "object",
  required: ["table", "name"],
  additionalProperties: false,
  properties: { table: { type: "string", pattern: TABLE_NAME_PATTERN }, name: { type: "string", pattern: WEBHOOK_NAME_PATTERN } },
} as const;

/** Limits of a webhook's settings (PUT /v1/tables/{table}/webhooks/{name}). */
export const WEBHOOK_LIMITS = {
  urlChars: 2_048,
  batchSize: { min: 1, max: 1_000 },
  timeoutMs: { min: 100, max: 120_000 },
  secretChars: 1_024,
} as const;

export const webhookBody = {
  type: "object",
  required: ["url"],
  additionalProperties: false,
  properties: {
    url: { type: "string", minLength: 1, maxLength: WEBHOOK_LIMITS.urlChars },
    batchSize: { type: "integer", minimum: WEBHOOK_LIMITS.batchSize.min, maximum: WEBHOOK_LIMITS.batchSize.max },
    timeoutMs: { type: "integer", minimum: WEBHOOK_LIMITS.timeoutMs.min, maximum: WEBHOOK_LIMITS.timeoutMs.max },
    secret: { type: "string", minLength: 1, maxLength: WEBHOOK_LIMITS.secretChars },
  },
} as const;

export interface WebhookBody {
  url: string;
  batchSize?: number;
  timeoutMs?: number;
  secret?: string;
}
