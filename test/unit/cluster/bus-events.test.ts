import { describe, expect, it } from "vitest";
import { type BusEvent, encodeEnvelope, MAX_ENVELOPE_CHARS, parseEnvelope, PendingEvents } from "../../../src/cluster/bus-events.js";
import { MAX_WAKE_ITEMS } from "../../../src/model/wake.js";

describe("bus envelope", () => {
  it("round-trips every kind of event", () => {
    const events: BusEvent[] = [
      { kind: "due", table: "orders" },
      { kind: "due", table: "orders", at: 1_700_000_000_123 },
      { kind: "wake", table: "orders" },
      { kind: "wake", table: "orders", dueAt: [1_700_000_000_123], forget: ["18446744073709551615"] },
      { kind: "table", table: "orders", change: "created" },
      { kind: "table", table: "orders", change: "altered" },
      { kind: "table", table: "orders", change: "dropped" },
      { kind: "webhooks", table: "orders" },
      { kind: "hello" },
    ];
    const text = encodeEnvelope("node-1", events);
    expect(JSON.parse(text)).toEqual({ v: 1, from: "node-1", events });
    expect(parseEnvelope(text)).toEqual({ v: 1, from: "node-1", events });
  });

  it.each([
    ["not JSON", "{nope"],
    ["JSON that is not an object", "[1,2]"],
    ["another version", JSON.stringify({ v: 2, from: "b", events: [] })],
    ["no sender", JSON.stringify({ v: 1, events: [] })],
    ["an empty sender", JSON.stringify({ v: 1, from: "", events: [] })],
    ["events that are not a list", JSON.stringify({ v: 1, from: "b", events: {} })],
    ["an event that is not an object", JSON.stringify({ v: 1, from: "b", events: ["due"] })],
    ["an event without a table", JSON.stringify({ v: 1, from: "b", events: [{ kind: "due" }] })],
    ["a due time that is not a number", JSON.stringify({ v: 1, from: "b", events: [{ kind: "due", table: "t", at: "soon" }] })],
    [
      "a wake with a due time that is not a number",
      JSON.stringify({ v: 1, from: "b", events: [{ kind: "wake", table: "t", dueAt: ["soon"] }] }),
    ],
    [
      "a wake with ids that are not message ids",
      JSON.stringify({ v: 1, from: "b", events: [{ kind: "wake", table: "t", forget: ["18446744073709551616"] }] }),
    ],
    [
      "a wake with too many ids",
      JSON.stringify({ v: 1, from: "b", events: [{ kind: "wake", table: "t", forget: Array(MAX_WAKE_ITEMS + 1).fill("1") }] }),
    ],
    ["an unknown table change", JSON.stringify({ v: 1, from: "b", events: [{ kind: "table", table: "t", change: "renamed" }] })],
    ["a huge message", JSON.stringify({ v: 1, from: "b", events: [], pad: "x".repeat(MAX_ENVELOPE_CHARS) })],
  ])("refuses %s", (_what, text) => {
    expect(parseEnvelope(text)).toBeUndefined();
  });

  it("leaves out events of kinds it does not know, and fields it does not know", () => {
    const text = JSON.stringify({
      v: 1,
      from: "b",
      extra: true,
      events: [
        { kind: "future-kind", x: 1 },
        { kind: "webhooks", table: "t", extra: 1 },
      ],
    });
    expect(parseEnvelope(text)).toEqual({ v: 1, from: "b", events: [{ kind: "webhooks", table: "t" }] });
  });
});

describe("PendingEvents", () => {
  it("keeps a node's hello once, without a table, and nothing but its kind", () => {
    const pending = new PendingEvents();
    pending.add({ kind: "hello" });
    pending.add({ kind: "due", table: "t" });
    pending.add({ kind: "hello" });
    expect(pending.take()).toEqual([{ kind: "due", table: "t" }, { kind: "hello" }]);
    expect(parseEnvelope(JSON.stringify({ v: 1, from: "b", events: [{ kind: "hello", table: "x", extra: 1 }] }))?.events).toEqual([
      { kind: "hello" },
    ]);
  });

  it("keeps identical events once", () => {
    const p = new PendingEvents();
    p.add({ kind: "webhooks", table: "a" });
    p.add({ kind: "webhooks", table: "a" });
    p.add({ kind: "table", table: "a", change: "altered" });
    p.add({ kind: "table", table: "a", change: "altered" });
    expect(p.take()).toEqual([
      { kind: "webhooks", table: "a" },
      { kind: "table", table: "a", change: "altered" },
    ]);
    expect(p.size).toBe(0);
  });

  it("keeps a repeated event at its latest place, so the last change of a table comes last", () => {
    const p = new PendingEvents();
    p.add({ kind: "table", table: "a", change: "created" });
    p.add({ kind: "table", table: "a", change: "dropped" });
    p.add({ kind: "table", table: "a", change: "created" });
    expect(p.take()).toEqual([
      { kind: "table", table: "a", change: "dropped" },
      { kind: "table", table: "a", change: "created" },
    ]);
  });

  it("merges the due events of a table into the earliest", () => {
    const p = new PendingEvents();
    p.add({ kind: "due", table: "a", at: 500 });
    p.add({ kind: "due", table: "a", at: 300 });
    p.add({ kind: "due", table: "a", at: 400 });
    p.add({ kind: "due", table: "b", at: 900 });
    expect(p.take()).toEqual([
      { kind: "due", table: "a", at: 300 },
      { kind: "due", table: "b", at: 900 },
    ]);
  });

  it("lets due now absorb due at, whichever came first", () => {
    const p = new PendingEvents();
    p.add({ kind: "due", table: "a", at: 300 });
    p.add({ kind: "due", table: "a" });
    p.add({ kind: "due", table: "b" });
    p.add({ kind: "due", table: "b", at: 300 });
    expect(p.take()).toEqual([
      { kind: "due", table: "a" },
      { kind: "due", table: "b" },
    ]);
  });
});

describe("PendingEvents with wakes", () => {
  it("merges the wakes of a table: due times sorted, ids once, each within MAX_WAKE_ITEMS", () => {
    const pending = new PendingEvents();
    pending.add({ kind: "wake", table: "t", dueAt: [300, 100], forget: ["1", "2"] });
    pending.add({ kind: "wake", table: "u" });
    pending.add({ kind: "wake", table: "t", dueAt: [200, 100], forget: ["2", "3"] });
    expect(pending.take()).toEqual([
      { kind: "wake", table: "u" },
      { kind: "wake", table: "t", dueAt: [100, 200, 300], forget: ["1", "2", "3"] },
    ]);
    const many = Array.from({ length: MAX_WAKE_ITEMS }, (_, i) => String(i));
    pending.add({ kind: "wake", table: "t", dueAt: [5], forget: many });
    pending.add({ kind: "wake", table: "t", dueAt: [1], forget: ["extra"] });
    const [merged] = pending.take() as Array<Extract<BusEvent, { kind: "wake" }>>;
    expect(merged!.dueAt).toEqual([1, 5]);
    expect(merged!.forget).toHaveLength(MAX_WAKE_ITEMS);
  });
});
