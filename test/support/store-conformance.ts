/**
 * The MessageStore contract as tests, written once and run against every store (as River's
 * riverdrivertest): the MySQL store in test/integration, the in-memory store the manager's unit tests use in
 * test/unit. A store that drifts from the contract fails here, whichever it is.
 *
 *   describeStoreConformance("MysqlStore", () => ({ store: db.store, newTable: (p) => db.table(p) }));
 */
import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_ID } from "../../src/ids.js";
import { backoffMs } from "../../src/model/backoff.js";
import { MAX_REASON_CHARS } from "../../src/model/limits.js";
import { TableNotFoundError } from "../../src/errors.js";
import { resolveOptions } from "../../src/options.js";
import type { BackoffSpec, BrowseQuery, MessageStore } from "../../src/store/types.js";
import type { NewMessage } from "../../src/model/messages.js";

export interface ConformanceTarget {
  store: MessageStore;
  /** A fresh table name (the suite creates the table), removed after the test. */
  newTable(prefix: string): string;
}

/** A fixed "now", epoch ms. */
const T0 = 1_700_000_000_000;

const msg = (id: string, over: Partial<NewMessage> = {}): NewMessage => ({
  id,
  priority: 50,
  timeNext: T0 - 1_000,
  payload: `{"n":"${id}"}`,
  ...over,
});
const spec = (over: Partial<BackoffSpec> = {}): BackoffSpec => ({
  baseDelayMs: 30_000,
  minBackoffMs: 1_000,
  maxBackoffMs: 0,
  jitter: 1,
  incrementEpoch: true,
  ...over,
});

export function describeStoreConformance(name: string, target: () => ConformanceTarget): void {
  describe(`${name}: the MessageStore contract`, () => {
    const table = async (prefix: string, options = {}) => {
      const { store, newTable } = target();
      const t = newTable(prefix);
      expect(await store.createTable(t, resolveOptions(options))).toBe(true);
      return { store, t };
    };

    it("creates a table once, discovers it with its options, alters and drops it", async () => {
      const { store, t } = await table("conf_ddl", { ackWaitMs: 5_000, batchSize: 7 });
      expect(await store.createTable(t, resolveOptions())).toBe(false);
      expect((await store.discoverTables()).find((d) => d.name === t)?.options).toMatchObject({ ackWaitMs: 5_000, batchSize: 7 });
      await store.alterTableOptions(t, resolveOptions({ batchSize: 9 }));
      expect((await store.discoverTables()).find((d) => d.name === t)?.options.batchSize).toBe(9);
      expect(store.maxMessageId(t)).toBe(MAX_MESSAGE_ID);
      expect(await store.dropTable(t)).toBe(true);
      expect(await store.dropTable(t)).toBe(false);
      expect((await store.discoverTables()).some((d) => d.name === t)).toBe(false);
    });

    it("inserts new ids, reports existing ones and repeats as duplicates, and leaves them untouched", async () => {
      const { store, t } = await table("conf_insert");
      expect(await store.insertMessages(t, [msg("1"), msg("2")])).toEqual({ inserted: ["1", "2"], duplicates: [] });
      expect(await store.insertMessages(t, [msg("2", { payload: '"new"' }), msg("3"), msg("3")])).toEqual({
        inserted: ["3"],
        duplicates: ["2", "3"],
      });
      expect((await store.readDue(t, T0, 10)).find((r) => r.id === "2")?.payload).toBe('{"n":"2"}');
    });

    it("reads due rows by priority, due time and id, up to a limit, and keeps payload text and 64-bit ids exactly", async () => {
      const { store, t } = await table("conf_read");
      const big = "18446744073709551615";
      await store.insertMessages(t, [
        msg("1", { priority: 50, timeNext: T0 - 1_000 }),
        msg("20", { priority: 10, timeNext: T0 - 500 }),
        msg("3", { priority: 10, timeNext: T0 - 500 }),
        msg("4", { priority: 50, timeNext: T0 + 10_000 }),
        msg(big, { priority: 0, timeNext: T0, payload: '{"x": 9007199254740993, "y":1e400, "z":-0}' }),
      ]);
      const due = await store.readDue(t, T0, 10);
      expect(due.map((r) => r.id)).toEqual([big, "3", "20", "1"]);
      expect(due[0]).toEqual({ id: big, priority: 0, timeNext: T0, epoch: 0, payload: '{"x": 9007199254740993, "y":1e400, "z":-0}' });
      expect((await store.readDue(t, T0, 2)).map((r) => r.id)).toEqual([big, "3"]);
      expect((await store.readDue(t, T0 + 10_000, 10)).map((r) => r.id)).toContain("4");
    });

    it("bounds a read by payload bytes, in order, always returning the first row, and says it cut the read", async () => {
      const { store, t } = await table("conf_bytes");
      const payload = JSON.stringify("p".repeat(98)); // 100 bytes
      await store.insertMessages(
        t,
        ["1", "2", "3", "4"].map((id, i) => msg(id, { payload, timeNext: T0 - 100 + i })),
      );
      const two = await store.readDue(t, T0, 10, 250);
      expect(two.map((r) => r.id)).toEqual(["1", "2"]);
      expect(two.cut).toBe(true);
      const one = await store.readDue(t, T0, 10, 1);
      expect(one.map((r) => r.id)).toEqual(["1"]);
      expect(one.cut).toBe(true);
      const all = await store.readDue(t, T0, 10, 10_000);
      expect(all.map((r) => r.id)).toEqual(["1", "2", "3", "4"]);
      expect(all.cut).toBeUndefined();
    });

    it("claims unacked due rows at the epoch read: ack wait plus the backoff of their epoch, and the delivery counted", async () => {
      const { store, t } = await table("conf_claim");
      await store.insertMessages(t, [msg("1"), msg("2", { epoch: 3 }), msg("3"), msg("4"), msg("5", { timeNext: T0 + 1 })]);
      await store.ack(t, ["3"], T0);
      const read = [
        { id: "1", epoch: 0 },
        { id: "2", epoch: 3 },
        { id: "3", epoch: 0 },
        { id: "4", epoch: 1 }, // read before a delivery that is not in this read: stale
        { id: "5", epoch: 0 }, // not due yet
        { id: "404", epoch: 0 },
      ];
      expect(await store.claim(t, read, T0, spec({ jitter: 1.2 }), 0)).toEqual(["1", "2"]);
      const rows = await store.readDue(t, T0 + 10_000_000, 10);
      expect(rows.find((r) => r.id === "1")).toMatchObject({ epoch: 1, timeNext: T0 + 30_000 + backoffMs(1_000, 0, 0, 1.2) });
      expect(rows.find((r) => r.id === "2")).toMatchObject({ epoch: 4, timeNext: T0 + 30_000 + backoffMs(1_000, 0, 3, 1.2) });
      expect(rows.find((r) => r.id === "4")).toMatchObject({ epoch: 0, timeNext: T0 - 1_000 });
      expect(rows.find((r) => r.id === "5")).toMatchObject({ epoch: 0, timeNext: T0 + 1 });
      // Claimed rows are not due: a second claim of the same read gets none of them.
      expect(await store.claim(t, read, T0 + 1, spec(), 0)).toEqual(["5"]);
    });

    it("claims a held row (not due, epoch 0) only while it still holds the time_next it was written with", async () => {
      const { store, t } = await table("conf_claim_held");
      const held = T0 + 1_000;
      await store.insertMessages(t, [msg("1", { timeNext: held }), msg("2", { timeNext: held }), msg("3", { timeNext: held })]);
      await store.reschedule(t, ["2"], T0, 500); // changed since it was written: not this holder's to send
      const read = [
        { id: "1", epoch: 0, heldUntil: held },
        { id: "2", epoch: 0, heldUntil: held },
        { id: "3", epoch: 0 }, // not due, and no hold given
      ];
      expect(await store.claim(t, read, T0, spec(), 0)).toEqual(["1"]);
      expect((await store.readDue(t, T0 + 10_000_000, 10)).find((r) => r.id === "1")).toMatchObject({ epoch: 1 });
      // Claimed: a second claim with the same hold gets nothing.
      expect(await store.claim(t, read.slice(0, 1), T0, spec(), 0)).toEqual([]);
    });

    it("reschedules without counting a delivery, and acks once: an acked row is counted once and never due again", async () => {
      const { store, t } = await table("conf_ack");
      await store.insertMessages(t, [msg("1"), msg("2")]);
      expect(await store.reschedule(t, ["1"], T0, 5_000)).toBe(1);
      expect((await store.readDue(t, T0 + 5_000, 10)).find((r) => r.id === "1")).toMatchObject({ epoch: 0, timeNext: T0 + 5_000 });
      expect(await store.ack(t, ["1", "2", "404"], T0)).toBe(2);
      expect(await store.ack(t, ["1"], T0)).toBe(0);
      expect(await store.reschedule(t, ["1"], T0, 0)).toBe(0);
      expect(await store.readDue(t, T0 + 10_000_000, 10)).toEqual([]);
      expect(await store.describeTable(t, T0)).toEqual({ ready: 0, delayed: 0, inFlight: 0, acked: 2 });
    });

    it("settles groups in order, each with its own count and time: an id acked by one group is left alone by the next", async () => {
      const { store, t } = await table("conf_groups");
      await store.insertMessages(t, [msg("1"), msg("2"), msg("3")]);
      const counts = await store.settleGroups(t, [
        { ids: ["1", "2"], change: { kind: "ack" }, nowMs: T0 },
        { ids: ["2", "3"], change: { kind: "reschedule", delayMs: 1_000 }, nowMs: T0 + 10 },
        { ids: [], change: { kind: "ack" }, nowMs: T0 },
      ]);
      expect(counts).toEqual([2, 1, 0]);
      expect((await store.readDue(t, T0 + 1_010, 10)).map((r) => [r.id, r.timeNext])).toEqual([["3", T0 + 1_010]]);
    });

    it("changes only deliveries that are still current, and reports the others stale", async () => {
      const { store, t } = await table("conf_fenced");
      await store.insertMessages(t, [msg("1", { epoch: 1 }), msg("2", { epoch: 2 }), msg("3", { epoch: 1 })]);
      await store.ack(t, ["3"], T0);
      const result = await store.updateDeliveries(
        t,
        [
          { id: "1", epoch: 0 },
          { id: "2", epoch: 0 },
          { id: "3", epoch: 0 },
          { id: "404", epoch: 0 },
        ],
        T0,
        { kind: "extend", byMs: 60_000 },
      );
      expect(result).toEqual({ changed: 1, stale: [{ id: "2", epoch: 0 }] });
      expect((await store.readDue(t, T0 + 59_999, 10)).map((r) => r.id)).toEqual(["2"]);
      // A shorter extension would not move the due time: nothing changes; it is reported unchanged.
      expect(await store.updateDeliveries(t, [{ id: "1", epoch: 0 }], T0 + 1_000, { kind: "extend", byMs: 30_000 })).toEqual({
        changed: 0,
        stale: [],
        unchanged: [{ id: "1", epoch: 0 }],
      });
      expect((await store.readDue(t, T0 + 59_999, 10)).map((r) => r.id)).toEqual(["2"]);
      expect(await store.updateDeliveries(t, [{ id: "1", epoch: 0 }], T0, { kind: "release" })).toEqual({ changed: 1, stale: [] });
      expect((await store.readDue(t, T0, 10)).find((r) => r.id === "1")).toMatchObject({ epoch: 0, timeNext: T0 });
    });

    it("moves rows out of their attempts to the dead letters, lists them newest first in pages, and redrives them", async () => {
      const { store, t } = await table("conf_dead", { maxAttempts: 2 });
      await store.insertMessages(t, [msg("1", { epoch: 2 }), msg("2", { epoch: 1 }), msg("3", { epoch: 2 }), msg("4", { epoch: 2 })]);
      expect(await store.countDead(t)).toBe(0);
      expect(await store.deadLetter(t, ["1", "2"], 2, "out of attempts", T0)).toEqual(["1"]);
      expect(await store.deadLetter(t, ["3", "4"], 2, "out of attempts", T0 + 1)).toEqual(["3", "4"]);
      expect(await store.countDead(t)).toBe(3);
      const first = await store.listDead(t, 2);
      expect(first.messages.map((m) => m.id)).toEqual(["4", "3"]);
      expect(first.messages[0]).toMatchObject({ priority: 50, epoch: 2, payload: '{"n":"4"}', reason: "out of attempts", deadAt: T0 + 1 });
      const rest = await store.listDead(t, 2, first.next);
      expect(rest.messages.map((m) => m.id)).toEqual(["1"]);
      expect(rest.next).toBeUndefined();
      await store.insertMessages(t, [msg("3")]); // the id is in use again
      expect(await store.redrive(t, ["1", "3", "404"], T0 + 5, 100)).toEqual({ redriven: ["1"], missing: ["404"], conflicts: ["3"] });
      expect((await store.readDue(t, T0 + 5, 10)).find((r) => r.id === "1")).toMatchObject({ epoch: 0, timeNext: T0 + 5 });
      expect((await store.redrive(t, undefined, T0 + 6, 100)).redriven).toEqual(["4"]);
      expect(await store.countDead(t)).toBe(1);
    });

    it("dead-letters the messages whose given delivery is current; the others are stale, acked ones neither", async () => {
      const { store, t } = await table("conf_fail");
      await store.insertMessages(t, [msg("1", { epoch: 1 }), msg("2", { epoch: 2 }), msg("3", { epoch: 1 }), msg("4", { epoch: 3 })]);
      await store.ack(t, ["3"], T0);
      const deliveries = [
        { id: "1", epoch: 0 },
        { id: "2", epoch: 0 },
        { id: "3", epoch: 0 },
        { id: "404", epoch: 0 },
      ];
      expect(await store.deadLetterDeliveries(t, deliveries, "bad payload", T0)).toEqual({ changed: 1, stale: [{ id: "2", epoch: 0 }] });
      expect(await store.deadLetterDeliveries(t, [{ id: "1", epoch: 0 }], "again", T0 + 1)).toEqual({ changed: 0, stale: [] });
      expect(await store.deadLetterDeliveries(t, [{ id: "4", epoch: 2 }], "x".repeat(2000), T0 + 2)).toEqual({ changed: 1, stale: [] });
      const dead = (await store.listDead(t, 10)).messages;
      expect(dead.map((m) => [m.id, m.epoch, m.reason.length])).toEqual([
        ["4", 3, MAX_REASON_CHARS],
        ["1", 1, "bad payload".length],
      ]);
      expect(await store.describeTable(t, T0)).toMatchObject({ acked: 1, inFlight: 0, ready: 1 });
    });

    it("purges rows acked before the cutoff, at most `limit` at a time", async () => {
      const { store, t } = await table("conf_purge");
      await store.insertMessages(t, [msg("1"), msg("2"), msg("3"), msg("4")]);
      await store.ack(t, ["1", "2", "3"], T0);
      expect(await store.purge(t, T0, 10)).toBe(0); // acked at the cutoff, not before it
      expect(await store.purge(t, T0 + 1, 2)).toBe(2);
      expect(await store.purge(t, T0 + 1, 2)).toBe(1);
      expect(await store.describeTable(t, T0)).toEqual({ ready: 1, delayed: 0, inFlight: 0, acked: 0 });
    });

    it("describes several tables in one call, as each alone, with their dead letters; a missing one is named", async () => {
      const { store, newTable } = target(); // both tables in one store
      const a = { store, t: newTable("conf_many_a") };
      const b = { store, t: newTable("conf_many_b") };
      for (const x of [a, b]) expect(await store.createTable(x.t, resolveOptions({}))).toBe(true);
      await a.store.insertMessages(a.t, [msg("1"), msg("2"), { ...msg("3"), timeNext: T0 + 60_000 }]);
      await a.store.ack(a.t, ["2"], T0);
      await b.store.insertMessages(b.t, [msg("7")]);
      await b.store.deadLetter(b.t, ["7"], 0, "bad", T0);
      const both = await a.store.describeTables([a.t, b.t], T0);
      expect([...both.keys()]).toEqual([a.t, b.t]);
      expect(both.get(a.t)).toEqual({ ...(await a.store.describeTable(a.t, T0)), dead: 0 });
      expect(both.get(a.t)).toEqual({ ready: 1, delayed: 1, inFlight: 0, acked: 1, dead: 0 });
      expect(both.get(b.t)).toEqual({ ready: 0, delayed: 0, inFlight: 0, acked: 0, dead: 1 });
      expect(await a.store.describeTables([], T0)).toEqual(new Map());
      const missing = `${a.t}_gone`;
      const err = await a.store.describeTables([a.t, missing], T0).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TableNotFoundError);
      expect((err as TableNotFoundError).table).toBe(missing);
    });

    it("sweeps several tables in one call: each one's oldest ack, and whether a row is due where asked", async () => {
      const { store, newTable } = target();
      const [a, b, c] = ["conf_sweep_a", "conf_sweep_b", "conf_sweep_c"].map((n) => newTable(n));
      for (const t of [a!, b!, c!]) expect(await store.createTable(t, resolveOptions({}))).toBe(true);
      await store.insertMessages(a!, [msg("1"), msg("2"), { ...msg("3"), timeNext: T0 + 60_000 }]);
      await store.ack(a!, ["2"], T0 + 5);
      await store.insertMessages(b!, [{ ...msg("4"), timeNext: T0 + 60_000 }]);
      const asks = [
        { table: a!, due: true },
        { table: b!, due: true },
        { table: c!, due: false },
      ];
      const swept = await store.sweep(asks, T0);
      expect([...swept.keys()]).toEqual([a, b, c]);
      expect(swept.get(a!)).toEqual({ due: true, oldestAck: T0 + 5 });
      expect(swept.get(b!)).toEqual({ due: false }); // its one row falls due later
      expect(swept.get(c!)).toEqual({}); // not asked whether due, and nothing acked
      expect((await store.sweep([{ table: b!, due: true }], T0 + 60_000)).get(b!)).toEqual({ due: true });
      expect((await store.sweep([{ table: a!, due: false }], T0)).get(a!)).toEqual({ oldestAck: T0 + 5 }); // not asked
      expect(await store.sweep([], T0)).toEqual(new Map());
      const missing = `${a!}_gone`;
      const err = await store
        .sweep(
          [
            { table: a!, due: true },
            { table: missing, due: false },
          ],
          T0,
        )
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TableNotFoundError);
      expect((err as TableNotFoundError).table).toBe(missing);
    });

    it("deletes unacked messages by id, or any unacked ones at most `limit` at a time; acked rows stay", async () => {
      const { store, t } = await table("conf_delete");
      await store.insertMessages(t, [msg("1"), msg("2"), msg("3"), msg("4"), msg("5")]);
      await store.ack(t, ["1"], T0);
      expect(await store.deleteUnacked(t, ["1", "2", "404"], 100)).toBe(1); // 1 is acked, 404 unknown
      expect(await store.getMessage(t, "2", T0)).toBeUndefined();
      expect(await store.deleteUnacked(t, [], 100)).toBe(0);
      expect(await store.deleteUnacked(t, undefined, 2)).toBe(2);
      expect(await store.deleteUnacked(t, undefined, 2)).toBe(1);
      expect(await store.deleteUnacked(t, undefined, 2)).toBe(0);
      expect(await store.describeTable(t, T0)).toEqual({ ready: 0, delayed: 0, inFlight: 0, acked: 1 });
    });

    it("tells when the oldest acked row was acked, and when unacked rows fall due", async () => {
      const { store, t } = await table("conf_due");
      expect(await store.oldestAck(t)).toBeUndefined();
      await store.insertMessages(t, [
        msg("1"),
        msg("2", { timeNext: T0 + 3_000 }),
        msg("3", { timeNext: T0 + 1_000 }),
        msg("4", { timeNext: T0 + 3_000 }),
        msg("5", { timeNext: T0 + 2_000 }),
      ]);
      await store.ack(t, ["5"], T0 + 7);
      await store.ack(t, ["1"], T0 + 9);
      expect(await store.oldestAck(t)).toBe(T0 + 7);
      expect(await store.dueTimes(t, T0, 10)).toEqual([T0 + 1_000, T0 + 3_000]); // 5 is acked; 3,000 once
      expect(await store.dueTimes(t, T0, 1)).toEqual([T0 + 1_000]);
      expect(await store.dueTimes(t, T0 + 1_000, 10)).toEqual([T0 + 3_000]); // after, not at
      expect(await store.dueTimes(t, T0, 10, ["2", "5", "404"])).toEqual([T0 + 3_000]);
      expect(await store.dueTimes(t, T0, 10, [])).toEqual([]);
    });

    it("browses unacked messages by state, soonest due or newest first, in pages, and one by id, changing nothing", async () => {
      const { store, t } = await table("conf_browse");
      const big = "18446744073709551615";
      const kept = '{"x": 1.0,  "b":[ ],"a":"\\u00e9"}';
      await store.insertMessages(t, [
        msg("1", { timeNext: T0 - 3_000 }), // ready
        msg("2", { timeNext: T0 - 1_000, priority: 0 }), // ready: browsing orders by due time, not priority
        msg("3", { timeNext: T0 + 5_000 }), // delayed
        msg("4", { timeNext: T0 + 2_000, epoch: 1 }), // in flight
        msg("5", { timeNext: T0 - 1_000 }), // ready, due with 2: after it, by id
        msg("6"), // acked below: never browsed
        msg(big, { timeNext: T0 + 5_000, epoch: 2, payload: kept }), // in flight, due with 3: after it, by id
      ]);
      await store.ack(t, ["6"], T0);
      const before = await store.describeTable(t, T0);
      expect(before).toEqual({ ready: 3, delayed: 1, inFlight: 2, acked: 1 });
      const page = (q: Partial<BrowseQuery> = {}) => store.browse(t, { order: "next", limit: 100, ...q }, T0);
      const ids = async (q: Partial<BrowseQuery> = {}) => (await page(q)).messages.map((m) => m.id);

      expect(await ids()).toEqual(["1", "2", "5", "4", "3", big]);
      expect(await ids({ order: "newest" })).toEqual([big, "5", "4", "3", "2", "1"]);
      expect(await ids({ state: "ready" })).toEqual(["1", "2", "5"]);
      expect(await ids({ state: "delayed" })).toEqual(["3"]);
      expect(await ids({ state: "inFlight" })).toEqual(["4", big]);
      expect(await ids({ state: "inFlight", order: "newest" })).toEqual([big, "4"]);
      const all = await page();
      expect(all.next).toBeUndefined();
      expect(all.messages.map((m) => m.state)).toEqual(["ready", "ready", "ready", "inFlight", "delayed", "inFlight"]);
      expect(all.messages[5]).toEqual({
        id: big,
        priority: 50,
        epoch: 2,
        dueAt: T0 + 5_000,
        state: "inFlight",
        payload: kept,
        acked: false,
      });
      // A state is as at the given time: 4 is ready once due again.
      expect((await store.browse(t, { order: "next", limit: 10, state: "ready" }, T0 + 2_000)).messages.map((m) => m.id)).toEqual([
        "1",
        "2",
        "5",
        "4",
      ]);

      // Pages follow one another by cursor, each order its own; the last page has no cursor, even when full.
      for (const [order, limit, expected] of [
        ["next", 2, ["1 2", "5 4", `3 ${big}`]],
        ["newest", 2, [`${big} 5`, "4 3", "2 1"]],
        ["next", 4, ["1 2 5 4", `3 ${big}`]],
        ["newest", 5, [`${big} 5 4 3 2`, "1"]],
      ] as const) {
        const pages: string[] = [];
        let cursor: string | undefined;
        do {
          const p = await page({ order, limit, ...(cursor === undefined ? {} : { cursor }) });
          pages.push(p.messages.map((m) => m.id).join(" "));
          cursor = p.next;
          expect(pages.length).toBeLessThan(10);
        } while (cursor !== undefined);
        expect(pages, `${order} by ${limit}`).toEqual(expected);
      }
      const first = await page({ state: "ready", limit: 2 });
      expect((await page({ state: "ready", limit: 2, cursor: first.next! })).messages.map((m) => m.id)).toEqual(["5"]);
      await expect(page({ order: "newest", cursor: first.next! })).rejects.toMatchObject({ code: "validation_failed" });
      await expect(page({ cursor: "x" })).rejects.toMatchObject({ code: "validation_failed" });

      expect(await store.getMessage(t, "3", T0)).toEqual({
        id: "3",
        priority: 50,
        epoch: 0,
        dueAt: T0 + 5_000,
        state: "delayed",
        payload: '{"n":"3"}',
        acked: false,
      });
      expect(await store.getMessage(t, big, T0)).toMatchObject({ state: "inFlight", epoch: 2, payload: kept });
      expect(await store.getMessage(t, "3", T0 + 5_000)).toMatchObject({ state: "ready" });
      expect(await store.getMessage(t, "6", T0)).toBeUndefined(); // acked
      expect(await store.getMessage(t, "404", T0)).toBeUndefined();

      // Only reads: every row is as it was.
      expect(await store.describeTable(t, T0)).toEqual(before);
      expect((await store.readDue(t, T0 + 10_000, 10)).map((r) => [r.id, r.epoch, r.timeNext])).toEqual([
        ["2", 0, T0 - 1_000],
        ["1", 0, T0 - 3_000],
        ["5", 0, T0 - 1_000],
        ["4", 1, T0 + 2_000],
        ["3", 0, T0 + 5_000],
        [big, 2, T0 + 5_000],
      ]);
    });

    it("describes a table by state: ready, delayed (never delivered), in flight (delivered), acked", async () => {
      const { store, t } = await table("conf_stats");
      await store.insertMessages(t, [msg("1"), msg("2", { timeNext: T0 + 5_000 }), msg("3", { epoch: 1, timeNext: T0 + 5_000 }), msg("4")]);
      await store.ack(t, ["4"], T0);
      expect(await store.describeTable(t, T0)).toEqual({ ready: 1, delayed: 1, inFlight: 1, acked: 1 });
    });
  });
}
