/**
 * The wire contract, in one place: the JSON schemas of every HTTP body, query and path, and of the frames a
 * subscriber sends over its WebSocket, built with TypeBox, which gives each schema its TypeScript type
 * (`Static`). Fastify validates the routes with them; the subscriber validates its frames with the same
 * schemas, compiled by the same validator (Ajv, fastify's options); the client takes its frame type from
 * here. Limits come from model/limits.ts.
 */
import { type Static, Type } from "typebox";
import { MESSAGE_ID_PATTERN } from "./ids.js";
import { MAX_DELAY_MS, MAX_EPOCH_MS, MAX_REASON_CHARS, PRIORITY, TABLE_NAME_PATTERN } from "./model/limits.js";
import { MAX_WAKE_ITEMS } from "./model/wake.js";
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
    /** Delivery stopped (POST /pause, /resume): enqueues go on, subscribers stay connected and get nothing. */
    paused: Type.Optional(Type.Boolean()),
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
/** A dead letter's reason as a consumer gives it (a fail). */
const Reason = Type.String({ maxLength: MAX_REASON_CHARS });
/** Fail: dead-letter at once, whatever attempts are left; `reason` is kept with each dead letter. */
export const FailBody = Type.Object(
  { ids: Type.Optional(IdList), receipts: Type.Optional(ReceiptList), reason: Type.Optional(Reason) },
  closed,
);
/** Ack, postpone and fail share their handler: this shape covers the three. */
export type IdsBody = Static<typeof PostponeBody> & Static<typeof FailBody>;

export const ExtendBody = Type.Object({ receipts: ReceiptList, byMs: PositiveDelay }, closed);
export type ExtendBody = Static<typeof ExtendBody>;

/** Release: deliveries the consumer hands back unprocessed (due at once; the delivery does not count). */
export const ReleaseBody = Type.Object({ receipts: ReceiptList }, closed);
export type ReleaseBody = Static<typeof ReleaseBody>;

/** `POST .../wake`'s optional body (model/wake.ts): due times of rows written, ids acked or postponed. */
export const WakeBody = Type.Object(
  {
    dueAt: Type.Optional(Type.Array(Type.Number({ minimum: 0, maximum: MAX_EPOCH_MS }), { maxItems: MAX_WAKE_ITEMS })),
    forget: Type.Optional(Type.Array(MessageId, { maxItems: MAX_WAKE_ITEMS })),
  },
  closed,
);
export type WakeBody = Static<typeof WakeBody>;

export const DeadQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: "^([1-9][0-9]{0,2}|1000)$" })),
    cursor: Type.Optional(Type.String({ pattern: "^[0-9]{1,20}:(0|[1-9][0-9]{0,19})$" })),
  },
  closed,
);
export type DeadQuery = Static<typeof DeadQuery>;

/** An unacked message's state, as a table's stats count it. */
const MessageState = Type.Enum(["ready", "delayed", "inFlight"]);

/** GET /v1/tables/{table}/messages: browse unacked messages without delivering them. */
export const BrowseQuery = Type.Object(
  {
    /** Absent: every unacked message. */
    state: Type.Optional(MessageState),
    /** "next" (default): soonest due first; "newest": the largest (latest) id first. */
    order: Type.Optional(Type.Enum(["next", "newest"])),
    /** 1..1000, default 100. */
    limit: Type.Optional(Type.String({ pattern: "^([1-9][0-9]{0,2}|1000)$" })),
    /** The previous page's `next`: `<due time ns>:<id>` in "next" order, `<id>` in "newest" order. */
    cursor: Type.Optional(Type.String({ pattern: "^(-?[0-9]{1,19}:)?(0|[1-9][0-9]{0,19})$" })),
  },
  closed,
);
export type BrowseQuery = Static<typeof BrowseQuery>;

export const MessageParams = Type.Object({ table: TableName, id: MessageId }, closed);
export type MessageParams = Static<typeof MessageParams>;

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

/** PUT /v1/tables/{table}/webhooks/{name}: a full replace (a secret left out is removed). */
export const WebhookBody = Type.Object(
  {
    /** http: or https: */
    url: Type.String({ minLength: 1, maxLength: WEBHOOK_LIMITS.urlChars }),
    /** Default 10 (the table's batchSize caps it too). */
    batchSize: Type.Optional(Type.Integer({ minimum: WEBHOOK_LIMITS.batchSize.min, maximum: WEBHOOK_LIMITS.batchSize.max })),
    /** Default 10000. */
    timeoutMs: Type.Optional(Type.Integer({ minimum: WEBHOOK_LIMITS.timeoutMs.min, maximum: WEBHOOK_LIMITS.timeoutMs.max })),
    /** HMAC-SHA256 key: requests then carry `x-tablemq-signature: sha256=<hex>`. Never returned. */
    secret: Type.Optional(Type.String({ minLength: 1, maxLength: WEBHOOK_LIMITS.secretChars })),
  },
  closed,
);
export type WebhookBody = Static<typeof WebhookBody>;

/** A frame's correlation value: when present the server answers with an acked/postponed/failed/extended... frame. */
const Ref = Type.Union([
  Type.String({ maxLength: 64 }),
  Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
]);

/** The frames a subscriber sends, by `type`: the HTTP ack, postpone, fail and extend bodies plus `type` and `ref`. */
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
  fail: Type.Object(
    {
      type: Type.Literal("fail"),
      ids: Type.Optional(IdList),
      receipts: Type.Optional(ReceiptList),
      reason: Type.Optional(Reason),
      ref: Type.Optional(Ref),
    },
    closed,
  ),
  extend: Type.Object({ type: Type.Literal("extend"), receipts: ReceiptList, byMs: PositiveDelay, ref: Type.Optional(Ref) }, closed),
  /** Hand deliveries back unprocessed: the HTTP release body plus `type` and `ref`. */
  release: Type.Object({ type: Type.Literal("release"), receipts: ReceiptList, ref: Type.Optional(Ref) }, closed),
  /** Stop sending to this socket; it stays open for acks, postpones, extensions and releases (a closing client). */
  pause: Type.Object({ type: Type.Literal("pause"), ref: Type.Optional(Ref) }, closed),
} as const;
export type ClientFrame = Static<(typeof ClientFrames)[keyof typeof ClientFrames]>;

/*
 * Answers: what the server sends back. The routes and the subscriber type what they send with these (a change
 * on one side fails the typecheck of the other); the client's types are these.
 */

/** Every non-2xx answer (server/errors.ts). `ids`: with a 504 `outcome_unknown`, the messages concerned. */
export const ErrorAnswer = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }),
  ids: Type.Optional(Type.Array(Type.String())),
});
export type ErrorAnswer = Static<typeof ErrorAnswer>;

/**
 * A table's options as the server reports them, every one filled in, in milliseconds. Numbers, not integers:
 * a table made by Vitess may carry fractional seconds in its COMMENT. The TableOptions type (options.ts).
 */
export const TableOptionsAnswer = Type.Object({
  ackWaitMs: Type.Number(),
  /** Defaults to ackWaitMs when not given. */
  minBackoffMs: Type.Number(),
  /** 0 means unbounded. */
  maxBackoffMs: Type.Number(),
  purgeAfterMs: Type.Number(),
  batchSize: Type.Integer(),
  cacheSize: Type.Integer(),
  pollIntervalMs: Type.Number(),
  /** 0 means unlimited. Stored as an extra vt_ key that Vitess ignores. */
  maxAttempts: Type.Integer(),
  /** Delivery stopped on every node (enqueues go on). Stored as `vt_paused=1`, another key Vitess ignores. */
  paused: Type.Boolean(),
});

export const TableStatsAnswer = Type.Object({
  /** Unacked and due now. */
  ready: Type.Integer(),
  /** Unacked, never delivered, due later. */
  delayed: Type.Integer(),
  /** Unacked, delivered at least once and waiting for its ack or redelivery. */
  inFlight: Type.Integer(),
  acked: Type.Integer(),
  /** Messages in the dead-letter table. */
  dead: Type.Integer(),
  receivers: Type.Integer(),
  cached: Type.Integer(),
});
export type TableStatsAnswer = Static<typeof TableStatsAnswer>;

const NullableTime = Type.Union([Type.Integer(), Type.Null()]);

/** A webhook's health, as a table's description lists it (no URL: describing a table needs less than admin). */
export const WebhookHealthAnswer = Type.Object({
  name: Type.String(),
  /** "down" after a failed POST until the recoverer's retry succeeds. */
  state: Type.Union([Type.Literal("up"), Type.Literal("down")]),
  /** Why the last POST (or the ack after it) failed; null until something fails. Kept after recovery. */
  lastError: Type.Union([Type.String(), Type.Null()]),
  lastErrorAt: NullableTime,
  lastDeliveredAt: NullableTime,
  /** Failures since the last success. */
  failures: Type.Integer(),
  /** When the recoverer tries again (epoch ms), or null. */
  nextRetryAt: NullableTime,
  /** Messages it holds: sent to it and not yet acked. */
  held: Type.Integer(),
  /**
   * Several nodes on one database: whether "this" node drives the webhook (its figures above are the
   * webhook's) or an "other" one (or none for a moment: its lease ran out), whose figures this node does not
   * have (they show it idle). Absent on a server that runs alone.
   */
  driver: Type.Optional(Type.Union([Type.Literal("this"), Type.Literal("other")])),
});
export type WebhookHealthAnswer = Static<typeof WebhookHealthAnswer>;

/** A webhook as the server shows it: its settings without the secret, and its health. */
export const WebhookAnswer = Type.Intersect([
  WebhookHealthAnswer,
  Type.Object({
    url: Type.String(),
    batchSize: Type.Integer(),
    timeoutMs: Type.Integer(),
    hasSecret: Type.Boolean(),
    createdAt: Type.Integer(),
    updatedAt: Type.Integer(),
  }),
]);
export type WebhookAnswer = Static<typeof WebhookAnswer>;

/** GET /v1/tables/{table}/webhooks: by name. */
export const WebhookListAnswer = Type.Object({ webhooks: Type.Array(WebhookAnswer) });
export type WebhookListAnswer = Static<typeof WebhookListAnswer>;

/** DELETE /v1/tables/{table}/webhooks/{name}. */
export const WebhookDeletedAnswer = Type.Object({ table: Type.String(), name: Type.String(), deleted: Type.Literal(true) });
export type WebhookDeletedAnswer = Static<typeof WebhookDeletedAnswer>;

export const TableAnswer = Type.Object({
  name: Type.String(),
  options: TableOptionsAnswer,
  stats: TableStatsAnswer,
  /** The health of the table's webhook subscribers. */
  webhooks: Type.Optional(Type.Array(WebhookHealthAnswer)),
});
export type TableAnswer = Static<typeof TableAnswer>;

/** GET /v1/tables: a page of tables by name; `stats=false` leaves out their counts (nothing is read from the database). */
export const TableListQuery = Type.Object(
  {
    /** 1..1000, default 100. */
    limit: Type.Optional(Type.String({ pattern: "^([1-9][0-9]{0,2}|1000)$" })),
    /** The previous page's `next`: the last table name it had. */
    cursor: Type.Optional(TableName),
    stats: Type.Optional(Type.Enum(["true", "false"])),
  },
  closed,
);
export type TableListQuery = Static<typeof TableListQuery>;

/**
 * GET /v1/tables: the tables the token may see, by name, each as GET /v1/tables/{table} describes it
 * (without `stats` when asked `stats=false`); `next` when there are more.
 */
export const TableListAnswer = Type.Object({
  tables: Type.Array(Type.Intersect([Type.Omit(TableAnswer, ["stats"]), Type.Object({ stats: Type.Optional(TableStatsAnswer) })])),
  next: Type.Optional(Type.String()),
});
export type TableListAnswer = Static<typeof TableListAnswer>;

/** DELETE /v1/tables/{table}. */
export const TableDroppedAnswer = Type.Object({ name: Type.String(), dropped: Type.Literal(true) });
export type TableDroppedAnswer = Static<typeof TableDroppedAnswer>;

/** POST /messages: ids in request order; `duplicates` (ids that existed and were not inserted) only when some. */
export const EnqueueAnswer = Type.Object({ ids: Type.Array(Type.String()), duplicates: Type.Optional(Type.Array(Type.String())) });
export type EnqueueAnswer = Static<typeof EnqueueAnswer>;

/** Ack and postpone: how many changed; `stale` (receipts refused as delivered again since) when receipts were given. */
export const AckAnswer = Type.Object({ acked: Type.Integer(), stale: Type.Optional(Type.Array(Type.String())) });
export type AckAnswer = Static<typeof AckAnswer>;
export const PostponeAnswer = Type.Object({ postponed: Type.Integer(), stale: Type.Optional(Type.Array(Type.String())) });
export type PostponeAnswer = Static<typeof PostponeAnswer>;
/** Fail: how many were moved to the dead letters; `stale` as for an ack. */
export const FailAnswer = Type.Object({ failed: Type.Integer(), stale: Type.Optional(Type.Array(Type.String())) });
export type FailAnswer = Static<typeof FailAnswer>;
/**
 * Extend: `extended` counts the messages whose due time moved; `stale`, receipts of messages delivered again
 * since; `unchanged` (only when some), receipts of current deliveries already due at or after now + byMs.
 */
/** Release: how many deliveries were handed back; `stale`, receipts of messages delivered again since. */
export const ReleaseAnswer = Type.Object({ released: Type.Integer(), stale: Type.Array(Type.String()) });
export type ReleaseAnswer = Static<typeof ReleaseAnswer>;

export const ExtendAnswer = Type.Object({
  extended: Type.Integer(),
  stale: Type.Array(Type.String()),
  unchanged: Type.Optional(Type.Array(Type.String())),
});
export type ExtendAnswer = Static<typeof ExtendAnswer>;

/** A dead letter; its payload is the JSON text the producer sent. */
export const DeadMessageAnswer = Type.Object({
  id: Type.String(),
  priority: Type.Integer(),
  /** Deliveries it had. */
  epoch: Type.Integer(),
  payload: Type.Unknown(),
  reason: Type.String(),
  /** When it was dead-lettered, epoch ms. */
  deadAt: Type.Integer(),
});
export const DeadLetterPageAnswer = Type.Object({
  messages: Type.Array(DeadMessageAnswer),
  /** Pass back as `cursor` for the next (older) page; absent on the last page. */
  next: Type.Optional(Type.String()),
});
export type DeadLetterPageAnswer = Static<typeof DeadLetterPageAnswer>;

/** GET /v1/tables/{table}/history: per-second rates on this node and, while the dashboard watched, depth. */
export const HistoryAnswer = Type.Object({
  table: Type.String(),
  /** Between two rate points. */
  stepMs: Type.Integer(),
  /** Messages per second this node enqueued, delivered and saw acked, oldest first (15 minutes at most). */
  rates: Type.Array(Type.Object({ t: Type.Integer(), enqueued: Type.Number(), delivered: Type.Number(), acked: Type.Number() })),
  /** The table's counts, recorded while someone listened to GET /v1/events (every 2 s), oldest first. */
  depth: Type.Array(
    Type.Object({ t: Type.Integer(), ready: Type.Integer(), delayed: Type.Integer(), inFlight: Type.Integer(), dead: Type.Integer() }),
  ),
});
export type HistoryAnswer = Static<typeof HistoryAnswer>;

/** GET /v1/whoami: what the presented token may do (the dashboard hides what it may not). */
export const WhoamiAnswer = Type.Object({
  /** False when the server has no tokens: then everything is open, and `scopes` says so. */
  authentication: Type.Boolean(),
  /** Scopes by table name, or "*" for every table. */
  scopes: Type.Record(Type.String(), Type.Array(Type.String())),
  /** Whether the server serves the dashboard (TABLEMQ_UI). */
  ui: Type.Boolean(),
});
export type WhoamiAnswer = Static<typeof WhoamiAnswer>;

/** POST /v1/tables/{table}/messages/{id}/deliver: the message is due now. */
export const DeliverNowAnswer = Type.Object({ id: Type.String(), dueNow: Type.Literal(true) });
export type DeliverNowAnswer = Static<typeof DeliverNowAnswer>;

/** DELETE /v1/tables/{table}/messages/{id}. */
export const MessageDeletedAnswer = Type.Object({ id: Type.String(), deleted: Type.Literal(true) });
export type MessageDeletedAnswer = Static<typeof MessageDeletedAnswer>;

/** POST /v1/tables/{table}/purge: how many unacked messages were deleted. */
export const PurgeAnswer = Type.Object({ purged: Type.Integer() });
export type PurgeAnswer = Static<typeof PurgeAnswer>;

export const RedriveAnswer = Type.Object({
  redriven: Type.Integer(),
  /** Ids that are not dead letters of the table. */
  missing: Type.Array(Type.String()),
  /** Dead ids in use in the table again (re-enqueued since): left dead. */
  conflicts: Type.Array(Type.String()),
});
export type RedriveAnswer = Static<typeof RedriveAnswer>;

/**
 * An unacked message as browsing shows it (GET /v1/tables/{table}/messages[/{id}]): read, not delivered, so
 * it has no receipt and nothing about it changed. Its payload is the JSON text the producer sent.
 */
export const BrowsedMessageAnswer = Type.Object({
  id: Type.String(),
  priority: Type.Integer(),
  /** Deliveries so far. */
  epoch: Type.Integer(),
  /** When it is (ready: was) due, epoch ms (a fraction when the due time has one). */
  dueAt: Type.Number(),
  state: MessageState,
  /** Acked messages are not browsed. */
  acked: Type.Literal(false),
  payload: Type.Unknown(),
});
export type BrowsedMessageAnswer = Static<typeof BrowsedMessageAnswer>;
export const BrowsePageAnswer = Type.Object({
  messages: Type.Array(BrowsedMessageAnswer),
  /** Pass back as `cursor` (with the same `order`) for the next page; absent on the last page. */
  next: Type.Optional(Type.String()),
});
export type BrowsePageAnswer = Static<typeof BrowsePageAnswer>;

/** A message as it arrives in a `messages` frame (and a webhook's POST). */
export const DeliveredMessage = Type.Object({
  id: Type.String(),
  priority: Type.Integer(),
  epoch: Type.Integer(),
  /** Names this delivery (id and epoch); opaque. Acks, postpones and extensions by receipt are fenced. */
  receipt: Type.String(),
  payload: Type.Unknown(),
});
export type DeliveredMessage = Static<typeof DeliveredMessage>;

/** The body of a webhook's POST (webhooks/request.ts writes it as text around the stored payloads). */
export const WebhookPostBody = Type.Object({
  table: Type.String(),
  webhook: Type.String(),
  /** Names the batch; the same on every try of it. */
  delivery: Type.String(),
  attempt: Type.Integer(),
  /** Epoch ms; covered by the signature, so a target can refuse stale replays. */
  sentAt: Type.Integer(),
  messages: Type.Array(DeliveredMessage),
});
export type WebhookPostBody = Static<typeof WebhookPostBody>;

/** The frames the server sends a subscriber, by `type`. */
export const ServerFrames = {
  subscribed: Type.Object({
    type: Type.Literal("subscribed"),
    table: Type.String(),
    batchSize: Type.Integer(),
    ackWaitMs: Type.Integer(),
    maxInFlight: Type.Integer(),
    /** How often the server pings the socket: a client that hears nothing for twice this reconnects. */
    pingIntervalMs: Type.Optional(Type.Integer()),
  }),
  messages: Type.Object({ type: Type.Literal("messages"), messages: Type.Array(DeliveredMessage) }),
  acked: Type.Object({ type: Type.Literal("acked"), ref: Ref, acked: Type.Integer(), stale: Type.Optional(Type.Array(Type.String())) }),
  postponed: Type.Object({
    type: Type.Literal("postponed"),
    ref: Ref,
    postponed: Type.Integer(),
    stale: Type.Optional(Type.Array(Type.String())),
  }),
  failed: Type.Object({ type: Type.Literal("failed"), ref: Ref, failed: Type.Integer(), stale: Type.Optional(Type.Array(Type.String())) }),
  extended: Type.Object({
    type: Type.Literal("extended"),
    ref: Ref,
    extended: Type.Integer(),
    stale: Type.Array(Type.String()),
    unchanged: Type.Optional(Type.Array(Type.String())),
  }),
  released: Type.Object({ type: Type.Literal("released"), ref: Ref, released: Type.Integer(), stale: Type.Array(Type.String()) }),
  /** After a pause: nothing more is sent on this socket. */
  paused: Type.Object({ type: Type.Literal("paused"), ref: Type.Optional(Ref) }),
  error: Type.Object({ type: Type.Literal("error"), code: Type.String(), message: Type.String(), ref: Type.Optional(Ref) }),
} as const;
export type ServerFrame = Static<(typeof ServerFrames)[keyof typeof ServerFrames]>;

/** A node of those on the server's database, as GET /v1/nodes shows it (times epoch ms). */
export const NodeAnswer = Type.Object({
  id: Type.String(),
  /** Where it is reached (TABLEMQ_NODE_URL, or the address it listens on); null until it said. */
  url: Type.Union([Type.String(), Type.Null()]),
  version: Type.String(),
  startedAt: Type.Integer(),
  /** Its last heartbeat in tablemq_nodes. */
  heartbeatAt: Type.Integer(),
  /** The node that answered. */
  self: Type.Boolean(),
  /** Connected to the Redis bus. */
  redis: Type.Boolean(),
});
export type NodeAnswer = Static<typeof NodeAnswer>;

/** GET /v1/nodes: the live nodes on this database, the answering one first. */
export const NodesAnswer = Type.Object({ nodes: Type.Array(NodeAnswer) });
export type NodesAnswer = Static<typeof NodesAnswer>;

/** GET /readyz when ready. */
export const ReadyAnswer = Type.Object({
  status: Type.Literal("ready"),
  /** How this node stands among the others on its database (absent when it keeps no membership). */
  cluster: Type.Optional(
    Type.Object({
      id: Type.String(),
      /** The live nodes, this one included. */
      nodes: Type.Integer(),
      /** The Redis bus: "off" without TABLEMQ_REDIS_URL. */
      bus: Type.Object({
        state: Type.Union([
          Type.Literal("off"),
          Type.Literal("connecting"),
          Type.Literal("up"),
          Type.Literal("down"),
          Type.Literal("closed"),
        ]),
        since: Type.Optional(Type.Integer()),
        lastError: Type.Optional(Type.String()),
      }),
      /**
       * How rows committed on other nodes reach this one: "bus" (at once), "poll" (other nodes are live and
       * the bus, here or on one of them, is off or down: every TABLEMQ_PEER_POLL_MS), "alone" (no other live node).
       */
      wakeups: Type.Union([Type.Literal("bus"), Type.Literal("poll"), Type.Literal("alone")]),
    }),
  ),
});
export type ReadyAnswer = Static<typeof ReadyAnswer>;
