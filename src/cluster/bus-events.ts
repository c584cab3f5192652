/**
 * The events tablemq nodes on one database send each other over the bus (RedisBus), and their wire form.
 * Every event is a hint: a node that misses one finds the same facts by polling (rows by its poller, tables
 * and webhooks by re-reading their configuration), only later. So the bus may drop, merge and reorder
 * events of different kinds and tables, never invent them.
 *
 * On the wire one Redis message is a JSON envelope `{ v: 1, from: <serverId>, events: BusEvent[] }`.
 */
import { mergeWakeNotes, type WakeNote, wakeNoteOf } from "../model/wake.js";

/** Rows of `table` are due now (no `at`) or at epoch-ms `at`: peers look for them. */
export interface DueEvent {
  kind: "due";
  table: string;
  at?: number;
}

/**
 * Rows of `table` were written or changed outside every node (the application's transaction, `tablemq/sql`):
 * each node polls now, looks again at each `dueAt`, and drops the `forget` ids (acked or postponed there)
 * from its cache. Sent by an application to the bus, or by the node a `POST .../wake` reached.
 */
export interface WakeEvent extends WakeNote {
  kind: "wake";
  table: string;
}

/** A table was created, altered (options) or dropped. */
export interface TableEvent {
  kind: "table";
  table: string;
  change: "created" | "altered" | "dropped";
}

/** The webhook configuration of a table changed. */
export interface WebhooksEvent {
  kind: "webhooks";
  table: string;
}

/**
 * The sender's bus is up: sent when it comes up (and after each reconnect). Any message from a node says as
 * much; this one says it at once, so peers switch to wake-ups without waiting for its heartbeat row.
 */
export interface HelloEvent {
  kind: "hello";
}

export type BusEvent = DueEvent | WakeEvent | TableEvent | WebhooksEvent | HelloEvent;

export const BUS_ENVELOPE_VERSION = 1;

/** The Redis channel of the nodes on `database` (and of applications that wake them: `tablemq/sql`). */
export function busChannelOf(database: string): string {
  return `tablemq:${database}:events`;
}

export interface BusEnvelope {
  v: typeof BUS_ENVELOPE_VERSION;
  from: string;
  events: BusEvent[];
}

/** Larger messages are not parsed (a sender splits its events well below this). */
export const MAX_ENVELOPE_CHARS = 1024 * 1024;
/** Longer table names or server ids are not ours (MySQL names have at most 64 characters). */
const MAX_NAME_CHARS = 256;
const TABLE_CHANGES: ReadonlySet<string> = new Set(["created", "altered", "dropped"]);
const KINDS: ReadonlySet<string> = new Set(["due", "wake", "table", "webhooks"]);

export function encodeEnvelope(from: string, events: readonly BusEvent[]): string {
  const envelope: BusEnvelope = { v: BUS_ENVELOPE_VERSION, from, events: [...events] };
  return JSON.stringify(envelope);
}

/**
 * The envelope in `text`, or undefined when it is not one (not JSON, another version, a field of the wrong
 * type): such a message is dropped whole. Events of a kind this version does not know are left out (a newer
 * peer may send them during a rolling upgrade); the others are copied field by field, so nothing else of the
 * message is kept. Never throws.
 */
export function parseEnvelope(text: string): BusEnvelope | undefined {
  if (text.length > MAX_ENVELOPE_CHARS) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(raw) || raw.v !== BUS_ENVELOPE_VERSION || !isName(raw.from) || !Array.isArray(raw.events)) return undefined;
  const events: BusEvent[] = [];
  for (const item of raw.events) {
    if (!isRecord(item) || typeof item.kind !== "string") return undefined;
    if (item.kind === "hello") {
      events.push({ kind: "hello" });
      continue;
    }
    if (!KINDS.has(item.kind)) continue;
    if (!isName(item.table)) return undefined;
    const table = item.table;
    if (item.kind === "wake") {
      const note = wakeNoteOf(item);
      if (note === undefined) return undefined;
      events.push({ kind: "wake", table, ...note });
    } else if (item.kind === "due") {
      if (item.at === undefined) events.push({ kind: "due", table });
      else if (typeof item.at === "number" && Number.isFinite(item.at)) events.push({ kind: "due", table, at: item.at });
      else return undefined;
    } else if (item.kind === "table") {
      if (typeof item.change !== "string" || !TABLE_CHANGES.has(item.change)) return undefined;
      events.push({ kind: "table", table, change: item.change as TableEvent["change"] });
    } else {
      events.push({ kind: "webhooks", table });
    }
  }
  return { v: BUS_ENVELOPE_VERSION, from: raw.from, events };
}

/**
 * Events waiting to be sent in one message, merged as they are added: identical events are kept once (at
 * the place of the latest, so "dropped" then "created" of one table stays in that order), and the "due"
 * events of one table become one, due at the earliest time asked for ("due now" absorbs "due at": a peer
 * that polls now also learns the table's later due times from the table).
 */
export class PendingEvents {
  private readonly events = new Map<string, BusEvent>();

  get size(): number {
    return this.events.size;
  }

  add(event: BusEvent): void {
    const key = eventKey(event);
    const before = this.events.get(key);
    this.events.delete(key);
    this.events.set(key, merged(before, event));
  }

  /** The merged events, oldest first; empties the set. */
  take(): BusEvent[] {
    const events = [...this.events.values()];
    this.events.clear();
    return events;
  }
}

function eventKey(event: BusEvent): string {
  switch (event.kind) {
    case "due":
      return `due\0${event.table}`;
    case "wake":
      return `wake\0${event.table}`;
    case "table":
      return `table\0${event.table}\0${event.change}`;
    case "webhooks":
      return `webhooks\0${event.table}`;
    case "hello":
      return "hello";
  }
}

function merged(before: BusEvent | undefined, event: BusEvent): BusEvent {
  if (before?.kind === "due" && event.kind === "due") return earlierDue(before, event);
  if (before?.kind === "wake" && event.kind === "wake") return { kind: "wake", table: event.table, ...mergeWakeNotes(before, event) };
  return event;
}

function earlierDue(a: DueEvent, b: DueEvent): DueEvent {
  if (a.at === undefined || b.at === undefined) return { kind: "due", table: a.table };
  return { kind: "due", table: a.table, at: Math.min(a.at, b.at) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_NAME_CHARS;
}
