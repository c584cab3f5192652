import type { Clock } from "../clock.js";
import type { ManagerSnapshot, Subscription } from "../manager/manager.js";
import type { Receiver } from "../manager/receivers.js";
import { MAX_REASON_CHARS } from "../model/limits.js";
import type { TableOptions } from "../options.js";
import { receiptOf } from "../receipts.js";
import type {
  BrowsedMessage,
  BrowsePage,
  BrowseQuery,
  DeadLetterPage,
  FencedResult,
  MessageStore,
  RedriveResult,
  TableStats,
} from "../store/types.js";
import type { Delivery } from "../model/messages.js";
import type { EnqueueMessage, EnqueueResult } from "../manager/inserter.js";
import { badId, checkDelay, checkIds, checkReceipts, ValidationError } from "../model/validate.js";
import { MessageNotFoundError } from "../errors.js";
import type { TableEntry } from "./table-entry.js";
import { isMessageId } from "../ids.js";
import type { WakeNote } from "../model/wake.js";

/** What the engine lends its table handles. */
export interface TableServices {
  store: MessageStore;
  clock: Clock;
  /** Runs a store operation on a table; a table found missing is forgotten at once. */
  onTable<T>(work: Promise<T>): Promise<T>;
  countDead(table: string): Promise<number>;
  /** Throws ConflictError when `<table>_dlq` is a message table of its own. */
  mustHaveDeadLetterName(table: string): void;
  /** Engine.wake. */
  wake(table: string, note: WakeNote): void;
}

export interface TableDescription {
  name: string;
  options: TableOptions;
  /** `dead`: messages in the table's dead-letter table. */
  stats: TableStats & { dead: number; receivers: number; cached: number };
}

/** A table's description: the store's counts (dead letters included) with its options, receivers and cache. */
export function descriptionOf(name: string, entry: TableEntry, stats: TableStats & { dead: number }): TableDescription {
  const snap = entry.snapshot();
  return { name, options: entry.options, stats: { ...stats, receivers: snap.receivers, cached: snap.cached } };
}

/** The answer to a fenced operation: how many messages changed, and the receipts refused as stale. */
export interface ReceiptResult {
  changed: number;
  stale: string[];
  /** An extension's receipts whose message was already due at or after the extended time (left as it was). */
  unchanged?: string[];
}

/**
 * The one way into a table (Engine.table): the server's routes, its WebSocket subscribers and the webhooks
 * all act on a table through this. Each operation checks its input, runs on the table's manager, and sends a
 * write whose outcome is unknown again (retry.ts) before it answers; a table dropped behind the engine's back
 * is noticed. A handle belongs to one life of its table: after a drop its operations fail as closed.
 */
export class TableHandle {
  readonly name: string;

  constructor(
    private readonly entry: TableEntry,
    private readonly services: TableServices,
  ) {
    this.name = entry.name;
  }

  get options(): TableOptions {
    return this.entry.options;
  }

  /** The table's counters and sizes (metrics, tests). */
  snapshot(): ManagerSnapshot {
    return this.entry.snapshot();
  }

  enqueue(messages: readonly EnqueueMessage[]): Promise<EnqueueResult> {
    return this.services.onTable(this.entry.use((m) => m.enqueue(messages)));
  }

  /** Marks ids acked; returns how many this call acked. */
  async ack(ids: readonly string[]): Promise<number> {
    checkIds(ids);
    return this.services.onTable(this.entry.use((m) => m.ack(ids)));
  }

  /** Due again after `delayMs`, or after the table's backoff when absent; returns how many moved. */
  async postpone(ids: readonly string[], delayMs?: number): Promise<number> {
    checkIds(ids);
    checkDelay("delayMs", delayMs);
    return this.services.onTable(this.entry.use((m) => m.reschedule(ids, delayMs)));
  }

  /**
   * Fenced ack by receipts: a receipt whose delivery is no longer current is returned in `stale`. An unknown
   * outcome is settled by sending it again (a receipt of a message acked by the lost attempt is then neither
   * counted nor stale).
   */
  ackReceipts(receipts: readonly string[]): Promise<ReceiptResult> {
    const deliveries = checkReceipts(receipts);
    return this.receipts(this.entry.use((m) => m.ackDeliveries(deliveries)));
  }

  /** Fenced postpone by receipts. */
  postponeReceipts(receipts: readonly string[], delayMs?: number): Promise<ReceiptResult> {
    const deliveries = checkReceipts(receipts);
    checkDelay("delayMs", delayMs);
    return this.receipts(this.entry.use((m) => m.rescheduleDeliveries(deliveries, delayMs)));
  }

  /**
   * Hands deliveries back unprocessed (a closing consumer's buffered messages): those still current are due
   * at once and their delivery does not count (epoch back by one), so closing uses up no attempt.
   */
  releaseReceipts(receipts: readonly string[]): Promise<ReceiptResult> {
    const deliveries = checkReceipts(receipts);
    return this.receipts(this.entry.use((m) => m.releaseDeliveries(deliveries)));
  }

  /**
   * Dead-letters ids at once, whatever attempts they have left: a consumer found they can never succeed.
   * `reason` is kept with each dead letter. Returns how many moved.
   */
  async fail(ids: readonly string[], reason?: string): Promise<number> {
    checkIds(ids);
    this.services.mustHaveDeadLetterName(this.name);
    return this.services.onTable(this.entry.use((m) => m.fail(ids, failReason(reason))));
  }

  /** Fenced fail by receipts: a receipt whose delivery is no longer current is returned in `stale`. */
  failReceipts(receipts: readonly string[], reason?: string): Promise<ReceiptResult> {
    const deliveries = checkReceipts(receipts);
    this.services.mustHaveDeadLetterName(this.name);
    return this.receipts(this.entry.use((m) => m.failDeliveries(deliveries, failReason(reason))));
  }

  /** Lease extension by receipts: current deliveries are not due again before `byMs` from now (idempotent). */
  extend(receipts: readonly string[], byMs: number): Promise<ReceiptResult> {
    const deliveries = checkReceipts(receipts);
    checkDelay("byMs", byMs);
    return this.receipts(this.entry.use((m) => m.extend(deliveries, byMs)));
  }

  /** Lease extension of deliveries this server made (a webhook's held messages): as `extend`. */
  async extendDeliveries(deliveries: readonly Delivery[], byMs: number): Promise<FencedResult> {
    checkDelay("byMs", byMs);
    return this.services.onTable(this.entry.use((m) => m.extend(deliveries, byMs)));
  }

  /**
   * Looks for due rows now (a poll, when someone is subscribed): for rows written into the table by someone
   * other than this server, e.g. in the application's own transaction, or by another node, which the server
   * would otherwise find only at its next poll (pollIntervalMs). The other nodes hear it over the bus.
   */
  wake(note: WakeNote = {}): void {
    this.services.wake(this.name, note);
  }

  subscribe(receiver: Receiver): Subscription {
    return this.entry.active().subscribe(receiver);
  }

  async describe(): Promise<TableDescription> {
    const { store, clock, onTable, countDead } = this.services;
    const [stats, dead] = await Promise.all([onTable(store.describeTable(this.name, clock.now())), countDead(this.name)]);
    return descriptionOf(this.name, this.entry, { ...stats, dead });
  }

  /**
   * Unacked messages, a page at a time (MessageStore.browse), read from the table without delivering them:
   * their epochs and due times stay as they are, and subscribers get them as if nobody had looked.
   */
  async browse(query: BrowseQuery): Promise<BrowsePage> {
    if (!(Number.isInteger(query.limit) && query.limit >= 1 && query.limit <= MAX_BROWSE_LIMIT)) {
      throw new ValidationError("limit", `must be an integer from 1 to ${MAX_BROWSE_LIMIT}, got ${query.limit}`);
    }
    const { store, clock, onTable } = this.services;
    return onTable(store.browse(this.name, query, clock.now()));
  }

  /** One unacked message, as `browse` shows it; MessageNotFoundError when there is none (unknown or acked). */
  async message(id: string): Promise<BrowsedMessage> {
    if (!isMessageId(id)) throw badId(id, "id");
    const { store, clock, onTable } = this.services;
    const found = await onTable(store.getMessage(this.name, id, clock.now()));
    if (!found) throw new MessageNotFoundError(this.name, id);
    return found;
  }

  /**
   * Makes an unacked message due now (a delayed or backed-off one; one in flight is delivered again, as
   * when its lease runs out), its epoch kept. MessageNotFoundError when there is none (unknown or acked).
   */
  async deliverNow(id: string): Promise<void> {
    if (!isMessageId(id)) throw badId(id, "id");
    if ((await this.services.onTable(this.entry.use((m) => m.reschedule([id], 0)))) === 0) throw new MessageNotFoundError(this.name, id);
  }

  /** Deletes an unacked message outright; MessageNotFoundError when there is none (unknown or acked). */
  async deleteMessage(id: string): Promise<void> {
    if (!isMessageId(id)) throw badId(id, "id");
    if ((await this.services.onTable(this.entry.use((m) => m.deleteUnacked([id])))) === 0) throw new MessageNotFoundError(this.name, id);
  }

  /** Deletes every unacked message of the table (ready, delayed and in flight); returns how many. Dead letters stay. */
  purge(): Promise<number> {
    return this.services.onTable(this.entry.use((m) => m.deleteUnacked()));
  }

  /** The table's dead letters, newest first. */
  listDead(limit: number, cursor?: string): Promise<DeadLetterPage> {
    this.services.mustHaveDeadLetterName(this.name);
    return this.services.store.listDead(this.name, limit, cursor);
  }

  /** Moves the given dead letters (or all of them) back into the table, due now with epoch 0. */
  redrive(ids?: readonly string[]): Promise<RedriveResult> {
    if (ids !== undefined) checkIds(ids);
    this.services.mustHaveDeadLetterName(this.name);
    return this.services.onTable(this.entry.use((m) => m.redrive(ids)));
  }

  /** A fenced write's result, its stale deliveries as receipts. */
  private async receipts(work: Promise<FencedResult>): Promise<ReceiptResult> {
    const { changed, stale, unchanged } = await this.services.onTable(work);
    return { changed, stale: stale.map(receiptOf), ...(unchanged === undefined ? {} : { unchanged: unchanged.map(receiptOf) }) };
  }
}

/** The most messages one browse reads (its payloads are all in memory at once). */
export const MAX_BROWSE_LIMIT = 1_000;

/** What a dead letter failed by a consumer says when the consumer gave no reason. */
export const DEFAULT_FAIL_REASON = "failed by a consumer";

function failReason(reason: string | undefined): string {
  if (reason === undefined || reason === "") return DEFAULT_FAIL_REASON;
  if (reason.length > MAX_REASON_CHARS)
    throw new ValidationError("reason", `must be at most ${MAX_REASON_CHARS} characters, got ${reason.length}`);
  return reason;
}
