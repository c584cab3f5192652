/**
 * The wire contract, in one place: the JSON schemas of every HTTP body, query and path, and of the frames a
 * subscriber sends over its WebSocket, built with TypeBox, which gives each schema its TypeScript type
 * (`Static`). Fastify validates the routes with them; the subscriber validates its frames with the same
 * schemas, compiled by the same validator (Ajv, fastify's options); the client takes its frame type from
 * here. Limits come from model/limits.ts.
 */
import { type Static, Type } from "typebox";
import { MESSAGE_ID_PATTERN } from "./ids.js";
import { MAX_DELAY_MS, MAX_EPOCH_MS, PRIORITY, TABLE_NAME_PATTERN } from "./model/limits.js";
import { RECEIPT_PATTERN } from "./receipts.js";

const closed = { additionalProperties: false } as const;

const TableName = Type.String({ pattern: TABLE_NAME_PATTERN });
const MessageId = Type.String({ pattern: MESSAGE_ID_PATTERN });
const Receipt = Type.String({ pattern: RECEIPT_PATTERN });
const IdList = Type.Array(MessageId, { minItems: 1 });
const ReceiptList = Type.Array(Receipt, { minItems: 1 });
const Delay = Type.Integer({ minimum: 0, maximum: MAX_DELAY_MS });
const PositiveDelay = Type.Integer({ minimum: 1, maximum: MAX_DELAY_MS });

export const TableParams = Type.Object({ table: TableName }, closed);
export type TableParams = Static<typeof TableParams>;

export const TableOptionsBody = Type.Object(
  {
    ackWaitMs: Type.Optional(PositiveDelay),
    minBackoffMs: Type.Optional(Delay),
    maxBackoffMs: Type.Optional(Delay),
    purgeAfterMs: Type.Optional(Delay),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    cacheSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
    pollIntervalMs: Type.Optional(PositiveDelay),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  },
  closed,
);
export type TableOptionsBody = Static<typeof TableOptionsBody>;

/** One message of an enqueue. `payload` is any JSON value; the server keeps its text as sent. */
export const EnqueueItem = Type.Object(
  {
    id: Type.Optional(MessageId),
    priority: Type.Optional(Type.Integer({ minimum: PRIORITY.min, maximum: PRIORITY.max })),
    delayMs: Type.Optional(Delay),
    deliverAt: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_EPOCH_MS })),
    payload: Type.Unknown(),
  },
  closed,
);
export const EnqueueBody = Type.Object({ messages: Type.Array(EnqueueItem, { minItems: 1 }) }, closed);
export type EnqueueBody = Static<typeof EnqueueBody>;

/** Ack: `ids`, `receipts` or both (the handler requires one of them, with a message that names them). */
export const AckBody = Type.Object({ ids: Type.Optional(IdList), receipts: Type.Optional(ReceiptList) }, closed);
export const PostponeBody = Type.Object(
  { ids: Type.Optional(IdList), receipts: Type.Optional(ReceiptList), delayMs: Type.Optional(Delay) },
  closed,
);
/** Ack and postpone share their handler: the postpone's shape covers both. */
export type IdsBody = Static<typeof PostponeBody>;

export const ExtendBody = Type.Object({ receipts: ReceiptList, byMs: PositiveDelay }, closed);
export type ExtendBody = Static<typeof ExtendBody>;

export const DeadQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: "^([1-9][0-9]{0,2}|1000)$" })),
    cursor: Type.Optional(Type.String({ pattern: "^[0-9]{1,20}:(0|[1-9][0-9]{0,19})$" })),
  },
  closed,
);
export type DeadQuery = Static<typeof DeadQuery>;

export const RedriveBody = Type.Object({ ids: Type.Optional(IdList), all: Type.Optional(Type.Boolean()) }, closed);
export type RedriveBody = Static<typeof RedriveBody>;

export const SubscribeQuery = Type.Object({ maxInFlight: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,6}$" })) }, closed);
export type SubscribeQuery = Static<typeof SubscribeQuery>;

export const WEBHOOK_NAME_PATTERN = "^[a-z0-9][a-z0-9_.-]{0,62}$";

/** Limits of a webhook's settings (PUT /v1/tables/{table}/webhooks/{name}). */
export const WEBHOOK_LIMITS = {
  urlChars: 2_048,
  batchSize: { min: 1, max: 1_000 },
  timeoutMs: { min: 100, max: 120_000 },
  secretChars: 1_024,
} as const;

export const WebhookParams = Type.Object({ table: TableName, name: Type.String({ pattern: WEBHOOK_NAME_PATTERN }) }, closed);
export type WebhookParams = Static<typeof WebhookParams>;

export const WebhookBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: WEBHOOK_LIMITS.urlChars }),
    batchSize: Type.Optional(Type.Integer({ minimum: WEBHOOK_LIMITS.batchSize.min, maximum: WEBHOOK_LIMITS.batchSize.max })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: WEBHOOK_LIMITS.timeoutMs.min, maximum: WEBHOOK_LIMITS.timeoutMs.max })),
    secret: Type.Optional(Type.String({ minLength: 1, maxLength: WEBHOOK_LIMITS.secretChars })),
  },
  closed,
);
export type WebhookBody = Static<typeof WebhookBody>;

/** A frame's correlation value: when present the server answers with an acked/postponed/extended frame. */
const Ref = Type.Union([
  Type.String({ maxLength: 64 }),
  Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
]);

/** The frames a subscriber sends, by `type`: the HTTP ack, postpone and extend bodies plus `type` and `ref`. */
export const ClientFrames = {
  ack: Type.Object(
    { type: Type.Literal("ack"), ids: Type.Optional(IdList), receipts: Type.Optional(ReceiptList), ref: Type.Optional(Ref) },
    closed,
  ),
  postpone: Type.Object(
    {
      type: Type.Literal("postpone"),
      ids: Type.Optional(IdList),
      receipts: Type.Optional(ReceiptList),
      delayMs: Type.Optional(Delay),
      ref: Type.Optional(Ref),
    },
    closed,
  ),
  extend: Type.Object({ type: Type.Literal("extend"), receipts: ReceiptList, byMs: PositiveDelay, ref: Type.Optional(Ref) }, closed),
} as const;
export type ClientFrame = Static<(typeof ClientFrames)[keyof typeof ClientFrames]>;
