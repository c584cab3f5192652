import type { ClaimRow, Delivery, MessageRow, NewMessage } from "../model/messages.js";
import type { TableOptions } from "../options.js";

/** A poll's read (MessageStore.readDue): `cut` when the byte bound left due rows unread. */
export type DueRows = MessageRow[] & { cut?: boolean };

export interface InsertResult {
  /** Ids written by this call, in request order. */
  inserted: string[];
  /** Ids that already existed and were left untouched. */
  duplicates: string[];
}

/** Backoff parameters of a postpone; see model/backoff.ts for the formula. */
export interface BackoffSpec {
  /** Added to now before the backoff (the ack wait for a post-send postpone, 0 for a client nack). */
  baseDelayMs: number;
  minBackoffMs: number;
  /** 0 = unbounded. */
  maxBackoffMs: number;
  /** Uniform in [0.666666, 1.333332). */
  jitter: number;
  /** Whether to count a delivery (epoch + 1): true after a send, false for a client nack. */
  incrementEpoch: boolean;
}

/** What a fenced update does to the messages whose delivery is still current. */
export type DeliveryChange =
  | { kind: "ack" }
  /** time_next = now + delayMs; the epoch is unchanged. */
  | { kind: "reschedule"; delayMs: number }
  /** time_next = now + backoff(epoch), as `postpone`. */
  | { kind: "backoff"; spec: BackoffSpec }
  /** time_next = at least now + byMs (never earlier than it was). */
  | { kind: "extend"; byMs: number }
  /** The recorded delivery never happened (a leased row that was not sent): due now, epoch back by one. */
  | { kind: "release" };

/** A client's settlement of messages by id: ack, or reschedule after a delay or the table's backoff. */
export type Settlement = Extract<DeliveryChange, { kind: "ack" | "reschedule" | "backoff" }>;

/** One request's part of a batch of settlements (MessageStore.settleGroups). */
export interface SettleGroup {
  ids: string[];
  change: Settlement;
  /** The request's time: its acks' time_acked, or what its delay or backoff counts from. */
  nowMs: number;
}

export interface FencedResult {
  /** Messages changed by this call. */
  changed: number;
  /** Deliveries refused because the message was delivered again since: nothing was changed for them. */
  stale: Delivery[];
  /** An extension's current deliveries already due at or after the extended time (left as they were); only when some. */
  unchanged?: Delivery[];
}

/** A message in a table's dead-letter table. */
export interface DeadMessage {
  id: string;
  priority: number;
  /** Deliveries it had. */
  epoch: number;
  /** Raw JSON text, as MessageRow.payload. */
  payload: string;
  reason: string;
  /** When it was dead-lettered, epoch ms. */
  deadAt: number;
}

export interface DeadLetterPage {
  messages: DeadMessage[];
  /** Pass back to get the next (older) page; absent on the last page. */
  next?: string;
}

export interface RedriveResult {
  /** Ids moved back into the message table, due now with epoch 0. */
  redriven: string[];
  /** Ids asked for that are not dead letters of this table. */
  missing: string[];
  /** Dead ids whose id is in use in the message table again: left dead. */
  conflicts: string[];
}

export interface TableStats {
  /** Unacked and due now. */
  ready: number;
  /** Unacked, never delivered, due later. */
  delayed: number;
  /** Unacked, delivered at least once and waiting for its ack or redelivery. */
  inFlight: number;
  acked: number;
}

/** An unacked message's state, as TableStats counts it. */
export type MessageState = "ready" | "delayed" | "inFlight";

/** What MessageStore.browse reads: unacked messages, a page at a time, without delivering them. */
export interface BrowseQuery {
  /** Only messages in this state; absent: every unacked message. */
  state?: MessageState;
  /** "next": soonest due first (time_next, then id); "newest": the largest id first (ids are time-ordered, src/ids.ts). */
  order: "next" | "newest";
  /** 1..1000. */
  limit: number;
  /** BrowsePage.next of the previous page (of the same order). */
  cursor?: string;
}

/** An unacked message as browsing shows it: read, not delivered (nothing about it changed). */
export interface BrowsedMessage {
  id: string;
  priority: number;
  /** Deliveries so far. */
  epoch: number;
  /** When it is (or was) due, epoch ms: time_next. */
  dueAt: number;
  state: MessageState;
  /** Raw JSON text, as MessageRow.payload. */
  payload: string;
  /** Acked rows are never browsed. */
  acked: false;
}

export interface BrowsePage {
  messages: BrowsedMessage[];
  /** Pass back as `cursor` for the next page; absent on the last page. */
  next?: string;
}

export interface DiscoveredTable {
  name: string;
  options: TableOptions;
}

/**
 * Everything the manager and the engine need from the database. `src/store/mysql/` implements it on
 * MySQL/MariaDB; tests also use an in-memory implementation. Nothing else talks SQL.
 */
export interface MessageStore {
  /** Tables whose COMMENT marks them as Vitess message tables. */
  discoverTables(): Promise<DiscoveredTable[]>;
  /** Creates the table; returns false (and changes nothing) if it already exists. */
  createTable(table: string, options: TableOptions): Promise<boolean>;
  /** Rewrites the table COMMENT with new options. */
  alterTableOptions(table: string, options: TableOptions): Promise<void>;
  /** Drops the table and its dead-letter table; returns false if there was nothing to drop. */
  dropTable(table: string): Promise<boolean>;
  describeTable(table: string, nowMs: number): Promise<TableStats>;
  /**
   * Several tables' stats and dead-letter counts in one statement (a page of a listing), by name. A table
   * that is not there (dropped meanwhile) is a TableNotFoundError, as for describeTable.
   */
  describeTables(tables: readonly string[], nowMs: number): Promise<Map<string, TableStats & { dead: number }>>;
  /**
   * Several tables looked at in one statement (the engine's sweep, engine/sweeper.ts): when each one's oldest
   * acked row was acked, and, where the query asks (`due`), whether one of its unacked rows is due at `nowMs`.
   * A table that is not there is a TableNotFoundError, as for describeTables.
   */
  sweep(queries: readonly SweepQuery[], nowMs: number): Promise<Map<string, SweepResult>>;

  /**
   * The largest id the table's id column holds, as the store last read the table (MAX_MESSAGE_ID when it
   * has not): a Vitess table may declare a signed BIGINT. Enqueues check client ids against it up front.
   */
  maxMessageId(table: string): bigint;
  /**
   * Inserts rows; an id that exists is left as it is and reported a duplicate. When the database refuses a
   * row for its values, nothing is written and the error is a RejectedWriteError (naming the row's id when
   * the database said which).
   */
  insertMessages(table: string, rows: NewMessage[]): Promise<InsertResult>;
  /**
   * Unacked rows with time_next <= now, ORDER BY priority, time_next, id, at most `limit`, and no more of
   * them than their payloads fit in `maxBytes` (default: no bound; the first row is returned whatever its
   * size). When `maxBytes` cut the read short of rows that are due, the result says so (`cut`).
   */
  readDue(table: string, nowMs: number, limit: number, maxBytes?: number): Promise<DueRows>;
  /**
   * Records a delivery before it is sent: each row still unacked, due at `nowMs` and at the epoch it was read
   * with (or, for a row with `heldUntil`, still holding exactly that time_next) gets time_next = now + base
   * + `nonceNs` + backoff(epoch) and epoch + 1 (the post-send postpone of Vitess, moved before the send). Returns the ids this call claimed, in the given order: the others were
   * claimed by someone else (another node), acked or rescheduled since they were read, and must not be sent.
   * `nonceNs` (an integer in [0, 1e6)) makes this claim's lease its own (store/mysql/claims.ts).
   */
  claim(table: string, rows: ClaimRow[], nowMs: number, spec: BackoffSpec, nonceNs: number): Promise<string[]>;
  /** Sets time_next = now + delay for unacked ids without counting a delivery; returns rows changed. */
  reschedule(table: string, ids: string[], nowMs: number, delayMs: number): Promise<number>;
  /** Marks unacked ids acked; returns how many this call acked. */
  ack(table: string, ids: string[], nowMs: number): Promise<number>;
  /**
   * Several requests' settlements in one transaction (coalesced requests): each group's change is made to
   * its unacked ids as by `ack`, `reschedule` or `postpone` (no epoch increment), group after group, so an
   * id acked by an earlier group is left alone by the later ones. Returns each group's count. All or nothing.
   */
  settleGroups(table: string, groups: SettleGroup[]): Promise<number[]>;
  /**
   * Applies `change`, in one transaction, to the unacked messages whose given delivery is still the
   * current one: the row's epoch is the delivery's epoch + 1 (the delivery was recorded, and none since).
   * Deliveries of acked or unknown messages are neither changed nor stale.
   */
  updateDeliveries(table: string, deliveries: Delivery[], nowMs: number, change: DeliveryChange): Promise<FencedResult>;
  /**
   * Moves unacked `ids` whose epoch is at least `minEpoch` into the table's dead-letter table (created on
   * first use), in one transaction; returns the ids moved.
   */
  deadLetter(table: string, ids: string[], minEpoch: number, reason: string, nowMs: number): Promise<string[]>;
  /**
   * Moves the unacked messages whose given delivery is still current (as `updateDeliveries` checks it) into
   * the dead-letter table, in one transaction: a consumer failing them for good. The others come back stale.
   */
  deadLetterDeliveries(table: string, deliveries: Delivery[], reason: string, nowMs: number): Promise<FencedResult>;
  /** Dead letters, newest first, `limit` per page. */
  listDead(table: string, limit: number, cursor?: string): Promise<DeadLetterPage>;
  countDead(table: string): Promise<number>;
  /** Moves the given dead ids (or the `limit` oldest when `ids` is undefined) back, epoch 0, due now. */
  redrive(table: string, ids: string[] | undefined, nowMs: number, limit: number): Promise<RedriveResult>;
  /**
   * Deletes unacked messages outright (an operator's delete or purge): the given `ids`, or when `ids` is
   * undefined up to `limit` of the table's unacked rows (call again until fewer come back). Returns rows deleted.
   */
  deleteUnacked(table: string, ids: string[] | undefined, limit: number): Promise<number>;
  /** Deletes up to `limit` rows acked before `cutoffMs`; returns rows deleted. */
  purge(table: string, cutoffMs: number, limit: number): Promise<number>;
  /** When the oldest acked row was acked (epoch ms), or undefined when none is: the next purge is due then. */
  oldestAck(table: string): Promise<number | undefined>;
  /**
   * When unacked rows fall due after `afterMs`: distinct times (epoch ms), ascending, at most `limit`. Of the
   * given ids (by primary key), or of the whole table (a scan of its unacked rows: for a manager's start,
   * not for every operation).
   */
  dueTimes(table: string, afterMs: number, limit: number, ids?: string[]): Promise<number[]>;
  /**
   * Unacked messages in `query.order`, at most `query.limit`, their state as `describeTable` tells it at
   * `nowMs`: a read that changes nothing. A cursor that is not this store's (or not of this order) is a
   * ValidationError (model/validate.ts) naming `cursor`.
   */
  browse(table: string, query: BrowseQuery, nowMs: number): Promise<BrowsePage>;
  /** One unacked message by id, as `browse` shows it; undefined when it is unknown or acked. */
  getMessage(table: string, id: string, nowMs: number): Promise<BrowsedMessage | undefined>;

  /** True when the database answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * A webhook subscriber of a table, as stored (see src/webhooks/). `secret` is the HMAC key: it is kept in
 * the database because signing needs it, and leaves the server nowhere else (never returned, never logged).
 */
export interface WebhookConfig {
  table: string;
  name: string;
  /** http: or https: */
  url: string;
  /** Most messages in one POST (the table's batchSize caps it too). */
  batchSize: number;
  /** How long a POST may take before it counts as failed. */
  timeoutMs: number;
  secret?: string;
  /** Epoch ms. */
  createdAt: number;
  updatedAt: number;
}

/**
 * Where webhook configurations live. The MySQL store keeps them in one table of its own (`tablemq_webhooks`,
 * made on first use), which discovery does not take for a message table.
 */
export interface WebhookStore {
  /** Every table's webhooks, ordered by table and name. */
  listWebhooks(): Promise<WebhookConfig[]>;
  /** Creates or replaces one; returns true when it was created. Keeps `createdAt` of a replaced one. */
  putWebhook(config: WebhookConfig): Promise<boolean>;
  /** Returns false when there was none. */
  deleteWebhook(table: string, name: string): Promise<boolean>;
  /**
   * Deletes the webhooks of tables that do not exist (any longer), checked in the same statement, so a
   * table that was only briefly out of sight keeps its webhooks. `table` limits it to one table. Returns
   * how many were deleted.
   */
  deleteWebhooksOfMissingTables(table?: string): Promise<number>;
}

/** A table the sweep looks at: its acks always, its due rows when `due`. */
export interface SweepQuery {
  table: string;
  due: boolean;
}

/** What the sweep found: whether a row is due now (when asked), and the oldest ack time (epoch ms; none acked: absent). */
export interface SweepResult {
  due?: boolean;
  oldestAck?: number;
}
