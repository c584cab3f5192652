import { MAX_MESSAGE_ID } from "../../src/ids.js";
import { sql } from "kysely";
import { expect, it } from "vitest";
import { backoffNs, msToNs } from "../../src/model/backoff.js";
import { resolveOptions } from "../../src/options.js";
import { createConnection } from "mysql2";
import { poolOptions, SESSION_SETUP_SQL } from "../../src/store/mysql/connect.js";
import { insertMessages, readDueQuery } from "../../src/store/mysql/messages.js";
import { PLAIN_FORM, readTableForms } from "../../src/store/mysql/table-form.js";
import type { BackoffSpec } from "../../src/store/types.js";
import type { NewMessage } from "../../src/model/messages.js";
import { describeWithDatabase, testDatabaseUrl, useTestStore } from "../support/database.js";

const T0 = 1_700_000_000_000; // a fixed "now", epoch ms

function msg(id: string, over: Partial<NewMessage> = {}): NewMessage {
  return { id, priority: 50, timeNext: T0, payload: `{"n":${JSON.stringify(id)}}`, ...over };
}

describeWithDatabase("MysqlStore", () => {
  const db = useTestStore();

  /** time_next / epoch / time_acked exactly as stored (ns as bigint). */
  async function rawRows(table: string) {
    const { rows } = await sql<{ id: string; epoch: string; time_next: string | null; time_acked: string | null }>`
      SELECT id, epoch, time_next, time_acked FROM ${sql.table(table)} ORDER BY id`.execute(db.store.db);
    return new Map(
      rows.map((r) => [
        String(r.id),
        {
          epoch: Number(r.epoch),
          timeNext: r.time_next === null ? null : BigInt(r.time_next),
          timeAcked: r.time_acked === null ? null : BigInt(r.time_acked),
        },
      ]),
    );
  }

  /** Every row due (time_next 0) as it was, for a claim at any time. */
  async function makeDue(table: string) {
    await sql`UPDATE ${sql.table(table)} SET time_next = 0 WHERE time_acked IS NULL`.execute(db.store.db);
  }

  const asRead = (rows: Map<string, { epoch: number }>, ids: string[]) => ids.map((id) => ({ id, epoch: rows.get(id)!.epoch }));

  async function setEpoch(table: string, id: string, epoch: number) {
    await sql`UPDATE ${sql.table(table)} SET epoch = ${epoch} WHERE id = ${BigInt(id)}`.execute(db.store.db);
  }

  async function newTable(prefix: string) {
    const table = db.table(prefix);
    expect(await db.store.createTable(table, resolveOptions())).toBe(true);
    return table;
  }

  // --- tables ----------------------------------------------------------------------------------------

  it("creates, discovers, alters, describes and drops a table", async () => {
    const table = db.table("ddl");
    const opts = resolveOptions({
      ackWaitMs: 500,
      purgeAfterMs: 120_000,
      batchSize: 3,
      cacheSize: 50,
      pollIntervalMs: 250,
      minBackoffMs: 1_500,
      maxBackoffMs: 60_000,
      maxAttempts: 5,
    });
    expect(await db.store.createTable(table, opts)).toBe(true);
    expect(await db.store.createTable(table, resolveOptions())).toBe(false);
    expect((await db.store.discoverTables()).find((t) => t.name === table)).toEqual({ name: table, options: opts });
    expect(await db.store.describeTable(table, T0)).toEqual({ ready: 0, delayed: 0, inFlight: 0, acked: 0 });

    const altered = resolveOptions({ ackWaitMs: 2_000, cacheSize: 7, batchSize: 7 });
    await db.store.alterTableOptions(table, altered);
    expect((await db.store.discoverTables()).find((t) => t.name === table)?.options).toEqual(altered);

    expect(await db.store.dropTable(table)).toBe(true);
    expect(await db.store.dropTable(table)).toBe(false);
    expect((await db.store.discoverTables()).some((t) => t.name === table)).toBe(false);
  });

  it("discovers a hand-made Vitess table, skips a malformed one and ignores other tables", async () => {
    const vitess = db.table("vitess");
    const plain = db.table("plain");
    const broken = db.table("broken");
    await sql`CREATE TABLE ${sql.table(vitess)} (
        id bigint, priority bigint default 50, epoch bigint, time_next bigint default 0, time_acked bigint,
        message json, primary key(id), index poller_idx(time_acked, priority, time_next desc)
      ) comment 'vitess_message, vt_ack_wait=30, vt_purge_after=120, vt_batch_size=1, vt_cache_size=10, vt_poller_interval=30'`.execute(
      db.store.db,
    );
    await sql`CREATE TABLE ${sql.table(plain)} (id bigint primary key) comment 'vitess_messages are elsewhere'`.execute(db.store.db);
    await sql`CREATE TABLE ${sql.table(broken)} (id bigint primary key) comment 'vitess_message,vt_ack_wait=soon'`.execute(db.store.db);

    const found = await db.store.discoverTables();
    expect(found.find((t) => t.name === vitess)?.options).toEqual(
      resolveOptions({ ackWaitMs: 30_000, purgeAfterMs: 120_000, batchSize: 1, cacheSize: 10, pollIntervalMs: 30_000 }),
    );
    expect(found.some((t) => t.name === plain || t.name === broken)).toBe(false);
    const { skipped } = await db.store.discoverTablesDetailed();
    expect(skipped.find((s) => s.name === broken)?.reason).toMatch(/vt_ack_wait/);

    // The store works on the Vitess shape too.
    expect(await db.store.insertMessages(vitess, [msg("7")])).toEqual({ inserted: ["7"], duplicates: [] });
    expect((await db.store.readDue(vitess, T0, 10)).map((r) => [r.id, r.epoch])).toEqual([["7", 0]]);
  });

  it("rejects invalid identifiers and ids before any SQL is sent", async () => {
    await expect(db.store.readDue("orders`; DROP TABLE x; --", T0, 1)).rejects.toThrow(/invalid table name/);
    await expect(db.store.createTable("Orders", resolveOptions())).rejects.toThrow(/invalid table name/);
    const table = await newTable("ids");
    await expect(db.store.ack(table, ["1 OR 1=1"], T0)).rejects.toThrow(/invalid message id/);
    await expect(db.store.ack(table, ["18446744073709551616"], T0)).rejects.toThrow(/invalid message id/);
    expect(await db.store.ack(table, [], T0)).toBe(0);
    expect(await db.store.claim(table, [], T0, spec(), 0)).toEqual([]);
    expect(await db.store.reschedule(table, [], T0, 5)).toBe(0);
    expect(await db.store.insertMessages(table, [])).toEqual({ inserted: [], duplicates: [] });
    // Inserted values are written into the statement's text: anything but a checked integer is refused.
    await expect(db.store.insertMessages(table, [msg("1), (2")])).rejects.toThrow(/invalid message id/);
    await expect(db.store.insertMessages(table, [msg("1", { epoch: 0.5 })])).rejects.toThrow(/invalid epoch/);
    await expect(db.store.insertMessages(table, [msg("1", { priority: 1.5 })])).rejects.toThrow(/invalid priority/);
    expect(await db.store.readDue(table, T0, 10)).toEqual([]);
  });

  // --- insert and read -------------------------------------------------------------------------------

  it("reads due rows by priority then time_next, honours delays and limits", async () => {
    const table = await newTable("read");
    await db.store.insertMessages(table, [
      msg("1", { priority: 50, timeNext: T0 - 1_000 }),
      msg("2", { priority: 10, timeNext: T0 - 500 }),
      msg("3", { priority: 10, timeNext: T0 - 2_000.123 }),
      msg("4", { priority: 50, timeNext: T0 + 10_000 }),
      msg("5", { priority: 0, timeNext: T0 }),
    ]);
    const due = await db.store.readDue(table, T0, 10);
    expect(due.map((r) => r.id)).toEqual(["5", "3", "2", "1"]);
    expect(due[1]).toEqual({ id: "3", priority: 10, timeNext: T0 - 2_000.123, epoch: 0, payload: '{"n":"3"}' });
    expect((await db.store.readDue(table, T0, 2)).map((r) => r.id)).toEqual(["5", "3"]);
    expect((await db.store.readDue(table, T0 + 9_999, 10)).map((r) => r.id)).not.toContain("4");
    expect((await db.store.readDue(table, T0 + 10_000, 10)).map((r) => r.id)).toEqual(["5", "3", "2", "1", "4"]);
    expect(await db.store.describeTable(table, T0)).toEqual({ ready: 4, delayed: 1, inFlight: 0, acked: 0 });
  });

  it("reads no more payload bytes than a poll's bound, in order, fetching large payloads by id, and says it cut the read", async () => {
    const table = await newTable("bytes");
    const small = (id: string) => msg(id, { payload: JSON.stringify({ s: id }), timeNext: T0 - 1_000 + Number(id) });
    const large = (id: string) => msg(id, { payload: JSON.stringify({ big: "é".repeat(30_000), id }), timeNext: T0 - 1_000 + Number(id) });
    await db.store.insertMessages(table, [small("1"), large("2"), small("3"), large("4"), large("5"), small("6")]);
    const bigBytes = Buffer.byteLength(large("2").payload); // LENGTH() counts UTF-8 bytes
    const all = await db.store.readDue(table, T0, 10, 10 * bigBytes);
    expect(all.map((r) => r.id)).toEqual(["1", "2", "3", "4", "5", "6"]);
    expect(all.cut).toBeUndefined();
    expect(all[1]!.payload).toBe(large("2").payload);
    const two = await db.store.readDue(table, T0, 10, 2 * bigBytes + 100);
    expect(two.map((r) => r.id)).toEqual(["1", "2", "3", "4"]); // two large ones and the small ones between
    expect(two.cut).toBe(true);
    expect(two.map((r) => r.payload)).toEqual([small("1").payload, large("2").payload, small("3").payload, large("4").payload]);
    // The first row always comes, however small the bound: a payload larger than the bound still moves.
    const one = await db.store.readDue(table, T0 + 1, 10, 1);
    expect(one.map((r) => r.id)).toEqual(["1"]);
    expect(one.cut).toBe(true);
  });

  it("breaks ties of priority and time_next by id, whatever plan the database picks", async () => {
    // A table laid out as Vitess's docs show (poller_idx with time_next DESC, a VARBINARY message) is read
    // with a filesort, which orders ties, and picks the rows under LIMIT, arbitrarily; MariaDB also picks a
    // filesort now and then for a fresh table of a few rows. Ties must come oldest id first, as enqueued.
    const table = db.table("ties");
    await sql`
      CREATE TABLE ${sql.table(table)} (
        id BIGINT UNSIGNED NOT NULL, priority TINYINT UNSIGNED NOT NULL DEFAULT 50, epoch BIGINT NOT NULL DEFAULT 0,
        time_next BIGINT DEFAULT 0, time_acked BIGINT DEFAULT NULL, message VARBINARY(128),
        PRIMARY KEY (id), INDEX poller_idx (time_acked, priority, time_next DESC)
      ) COMMENT 'vitess_message,vt_ack_wait=30'`.execute(db.store.db);
    const rows = Array.from({ length: 200 }, (_, i) => msg(String(i + 1)));
    await db.store.insertMessages(table, rows);
    const { rows: plan } = await sql<Record<string, unknown>>`EXPLAIN ${readDueQuery(table, T0, 100)}`.execute(db.store.db);
    expect(String(plan[0]?.Extra ?? "")).toMatch(/filesort/i);
    const due = await db.store.readDue(table, T0, 100);
    expect(due.map((r) => r.id)).toEqual(rows.slice(0, 100).map((r) => r.id));
  });

  it("round-trips payload text and 64-bit ids exactly", async () => {
    const table = await newTable("exact");
    // The last payload holds what SQL escaping must get right: quotes, backslashes, escapes, `?`, comments.
    const hostile = String.raw`{"q":"it's \"quoted\" back\\slash ? ; -- '); DROP TABLE x; --","nul":"\u0000 \n \\' \\\" 😀"}`;
    const payloads = ['{"a":1,"b":[true,null],"s":"é"}', '{ "spaced" : [ 1 , 2 ] }', '"just a string ✓"', "12345678901234567890", hostile];
    const ids = ["18446744073709551615", "18446744073709551614", "9007199254740993", "0", "7"];
    await db.store.insertMessages(
      table,
      ids.map((id, i) => msg(id, { payload: payloads[i]!, priority: i })),
    );
    await sql`INSERT INTO ${sql.table(table)} (id, time_next, message) VALUES (42, 0, NULL)`.execute(db.store.db);

    const got = await db.store.readDue(table, T0, 10);
    expect(got.map((r) => r.id)).toEqual([...ids, "42"]);
    expect(got.map((r) => typeof r.payload)).toEqual(Array(6).fill("string"));
    expect(JSON.parse(got[4]!.payload)).toEqual(JSON.parse(hostile));
    if (db.flavor === "mariadb") {
      // MariaDB keeps JSON as text: byte-exact.
      expect(got.map((r) => r.payload)).toEqual([...payloads, "null"]);
    } else {
      // MySQL 8 stores JSON in a binary form and re-serialises it: equal as JSON, not as text.
      expect(got.map((r) => JSON.parse(r.payload))).toEqual([...payloads, "null"].map((p) => JSON.parse(p)));
    }
    expect(await db.store.ack(table, ["18446744073709551614"], T0)).toBe(1);
    expect((await db.store.readDue(table, T0, 10)).map((r) => r.id)).toEqual([ids[0], ids[2], ids[3], ids[4], "42"]);
  });

  it("reads each table's form: hex payloads and unchecked updates only where the result is the same", async () => {
    const made = await newTable("form");
    const vitess = db.table("formv");
    const latin1 = db.table("forml");
    const checked = db.table("formc");
    const generated = db.table("formg");
    const triggered = db.table("formt");
    const signed = db.table("forms");
    const columns =
      "id BIGINT UNSIGNED NOT NULL PRIMARY KEY, priority TINYINT UNSIGNED NOT NULL DEFAULT 50, epoch BIGINT NOT NULL DEFAULT 0, time_next BIGINT DEFAULT 0, time_acked BIGINT DEFAULT NULL";
    const comment = "COMMENT 'vitess_message,vt_ack_wait=30'";
    await sql.raw(`CREATE TABLE ${vitess} (${columns}, message VARBINARY(128)) ${comment}`).execute(db.store.db);
    await sql.raw(`CREATE TABLE ${latin1} (${columns}, message TEXT CHARACTER SET latin1) ${comment}`).execute(db.store.db);
    await sql
      .raw(`CREATE TABLE ${checked} (${columns}, message JSON, CHECK (time_acked IS NULL OR time_acked < 5)) ${comment}`)
      .execute(db.store.db);
    await sql
      .raw(`CREATE TABLE ${generated} (${columns}, message JSON, due BIGINT AS (time_next + 1) VIRTUAL) ${comment}`)
      .execute(db.store.db);
    await sql.raw(`CREATE TABLE ${triggered} (${columns}, message JSON) ${comment}`).execute(db.store.db);
    await sql.raw(`CREATE TABLE ${signed} (${columns.replace("BIGINT UNSIGNED", "BIGINT")}, message JSON) ${comment}`).execute(db.store.db);
    await sql
      .raw(`CREATE TRIGGER ${triggered}_t BEFORE UPDATE ON ${triggered} FOR EACH ROW SET NEW.priority = NEW.priority`)
      .execute(db.store.db);

    await db.store.discoverTables();
    const forms = Object.fromEntries([made, vitess, latin1, checked, generated, triggered, signed].map((t) => [t, db.store.formOf(t)]));
    const mariadb = db.flavor === "mariadb";
    const maxId = MAX_MESSAGE_ID;
    expect(forms).toEqual({
      // MariaDB's JSON is utf8mb4 text, kept as sent; MySQL 8's native JSON refuses a binary string.
      [made]: { hexPayload: mariadb, uncheckedUpdates: mariadb, maxId },
      [vitess]: { hexPayload: true, uncheckedUpdates: mariadb, maxId },
      [latin1]: { hexPayload: false, uncheckedUpdates: mariadb, maxId }, // hex bytes would be taken as latin1 characters
      [checked]: { hexPayload: mariadb, uncheckedUpdates: false, maxId }, // a CHECK on a column the UPDATEs set
      [generated]: { hexPayload: mariadb, uncheckedUpdates: false, maxId },
      [triggered]: { hexPayload: mariadb, uncheckedUpdates: false, maxId },
      [signed]: { hexPayload: mariadb, uncheckedUpdates: mariadb, maxId: 2n ** 63n - 1n }, // Vitess's docs declare a signed id
    });
    expect(db.store.formOf("not_a_table")).toEqual(PLAIN_FORM);
    expect(db.store.formOf(made)).toEqual((await readTableForms(db.store.db, [made])).get(made)); // createTable read it too

    // Each stores the payload's characters: hex where the column keeps UTF-8 bytes, a converted string elsewhere.
    const payload = '{"s":"é ✓ 😀 \\u0000 \' \\\\"}';
    for (const table of [made, vitess, checked]) {
      await db.store.insertMessages(table, [msg("1", { payload })]);
      expect((await db.store.readDue(table, T0, 10))[0]?.payload).toBe(payload);
    }
    // Payloads too many, or one too big, for the insert's hex scratch space (256 KiB) in one go.
    const big = ["x".repeat(30_000), "é😀".repeat(15_000), "y".repeat(90_000), "z", "✓".repeat(40_000)].map((s) => JSON.stringify({ s }));
    const bigIds = ["10", "11", "12", "13", "14", "15", "16", "17"];
    await db.store.insertMessages(
      made,
      bigIds.map((id, i) => msg(id, { payload: big[i % big.length]!, priority: 0 })),
    );
    const gotBig = (await db.store.readDue(made, T0, 20)).filter((r) => bigIds.includes(r.id));
    expect(gotBig.map((r) => r.payload)).toEqual(bigIds.map((_, i) => big[i % big.length]));

    await db.store.insertMessages(latin1, [msg("1", { payload: '{"s":"é"}' })]);
    expect((await db.store.readDue(latin1, T0, 10))[0]?.payload).toBe('{"s":"é"}');
    const { rows } = await sql<{ hex: string }>`SELECT HEX(message) AS hex FROM ${sql.table(latin1)}`.execute(db.store.db);
    expect(rows[0]?.hex).toBe("7B2273223A22E9227D"); // é as one latin1 byte, E9: converted, not C3A9 taken as two characters

    // The CHECK that sees time_acked still holds the ack back; the JSON CHECK still refuses a bad payload.
    await expect(db.store.ack(checked, ["1"], T0)).rejects.toThrow();
    await expect(db.store.insertMessages(made, [msg("2", { payload: '{"bad":' })])).rejects.toThrow();
    expect((await db.store.readDue(made, T0, 20)).map((r) => r.id)).toEqual(["10", "11", "12", "13", "14", "15", "16", "17", "1"]);
    expect(await db.store.ack(made, ["1"], T0)).toBe(1);
    await db.store.dropTable(made);
    expect(db.store.formOf(made)).toEqual(PLAIN_FORM);
  });

  it("reads its literals right on a server with NO_BACKSLASH_ESCAPES: every new connection's session drops that mode", async () => {
    // The wiring: the pool's first statement on a connection is the setup (a fresh session has run no SET).
    const { rows } = await sql<{ Value: string }>`SHOW SESSION STATUS LIKE 'Com_set_option'`.execute(db.store.db);
    expect(Number(rows[0]!.Value)).toBeGreaterThanOrEqual(1);
    const bare = createConnection({ ...poolOptions(testDatabaseUrl()) });
    const [fresh] = await bare.promise().query("SHOW SESSION STATUS LIKE 'Com_set_option'");
    expect(Number((fresh as Array<{ Value: string }>)[0]!.Value)).toBe(0);
    bare.destroy();

    // What the setup is for, on one connection whose session has the mode.
    const table = await newTable("nbe");
    const hostile = String.raw`{"q":"it's \\'); DROP TABLE x; -- \" back\\slash"}`;
    await db.store.db.connection().execute(async (conn) => {
      await sql`SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')`.execute(conn);
      try {
        await expect(insertMessages(conn, table, [msg("1", { payload: hostile })])).rejects.toThrow(); // the hazard
        await sql.raw(SESSION_SETUP_SQL).execute(conn);
        await insertMessages(conn, table, [msg("1", { payload: hostile })]);
      } finally {
        await sql.raw(SESSION_SETUP_SQL).execute(conn);
      }
    });
    expect((await db.store.readDue(table, T0, 10))[0]?.payload).toBe(hostile);
  });

  it("reports duplicate ids and leaves the existing rows untouched", async () => {
    const table = await newTable("dup");
    expect(await db.store.insertMessages(table, [msg("1"), msg("2", { priority: 5 })])).toEqual({
      inserted: ["1", "2"],
      duplicates: [],
    });
    const second = await db.store.insertMessages(table, [
      msg("2", { priority: 99, payload: '{"new":true}' }),
      msg("3"),
      msg("3", { payload: '{"again":true}' }),
      msg("1"),
    ]);
    expect(second).toEqual({ inserted: ["3"], duplicates: ["2", "3", "1"] });
    const rows = await db.store.readDue(table, T0, 10);
    expect(rows.find((r) => r.id === "2")).toMatchObject({ priority: 5, payload: '{"n":"2"}' });
    expect(rows.find((r) => r.id === "3")?.payload).toBe('{"n":"3"}');
    expect(rows).toHaveLength(3);
  });

  // --- postpone, reschedule, ack, purge ----------------------------------------------------------------

  function spec(over: Partial<BackoffSpec> = {}): BackoffSpec {
    return { baseDelayMs: 30_000, minBackoffMs: 1_000, maxBackoffMs: 0, jitter: 1, incrementEpoch: true, ...over };
  }

  /** What backoff.ts says time_next must become. */
  function expected(nowMs: number, s: BackoffSpec, epoch: number): bigint {
    return msToNs(nowMs) + msToNs(s.baseDelayMs) + backoffNs(s.minBackoffMs, s.maxBackoffMs, epoch, s.jitter);
  }

  it("claims with the backoff of backoff.ts, bit for bit, plus the nonce, and counts the delivery", async () => {
    const table = await newTable("claim");
    const ids = ["1", "2", "3", "4", "5", "6"];
    await db.store.insertMessages(
      table,
      ids.map((id) => msg(id)),
    );
    // 1.000001 and 0.688 are where a DOUBLE product floors differently from an exact DECIMAL one
    // (1e9 * 1.000001 is 1000000999.9999999 in floating point), so they catch SQL doing decimal math.
    const jitters = [0.666666, 1.333332 - 1e-12, 1.000001, 0.688, 0.7777777777777777, 0.9876543210123];
    const specs = [
      spec(),
      spec({ maxBackoffMs: 5_000 }),
      spec({ minBackoffMs: 1_234.567, baseDelayMs: 0.5 }),
      spec({ minBackoffMs: 0.001, maxBackoffMs: 0 }),
    ];
    let now = T0 + 0.25;
    let nonce = 0;
    for (const s0 of specs) {
      for (const jitter of jitters) {
        const s = { ...s0, jitter };
        await makeDue(table);
        const before = await rawRows(table);
        now += 1;
        nonce = (nonce + 123_457) % 1_000_000;
        expect(await db.store.claim(table, asRead(before, ids), now, s, nonce)).toEqual(ids);
        const after = await rawRows(table);
        for (const id of ids) {
          const epoch = before.get(id)!.epoch;
          const timeNext = expected(now, s, epoch) + BigInt(nonce);
          expect({ id, epoch, timeNext: after.get(id)!.timeNext }).toEqual({ id, epoch, timeNext });
          expect(after.get(id)!.epoch).toBe(epoch + 1);
        }
      }
      for (const id of ids) await setEpoch(table, id, Number(id) - 1); // epochs 0..5 for the next spec
    }
  });

  it("clamps to minBackoff and maxBackoff", async () => {
    const table = await newTable("clamp");
    await db.store.insertMessages(table, [msg("1"), msg("2")]);
    await setEpoch(table, "2", 4);
    const s = spec({ minBackoffMs: 1_000, maxBackoffMs: 5_000, jitter: 0.666666 });
    await db.store.claim(table, asRead(await rawRows(table), ["1", "2"]), T0, s, 0);
    const rows = await rawRows(table);
    expect(rows.get("1")!.timeNext).toBe(msToNs(T0 + 30_000 + 1_000)); // 1000 * 0.67 < min
    expect(rows.get("2")!.timeNext).toBe(msToNs(T0 + 30_000 + 5_000)); // 16000 * 0.67 > max
  });

  it("claims only rows still unacked, due and at the epoch read, and leaves the others as they were", async () => {
    const table = await newTable("claimfence");
    const ids = ["1", "2", "3", "4", "5"];
    await db.store.insertMessages(table, [...ids.map((id) => msg(id)), msg("6", { timeNext: T0 + 1 })]);
    await db.store.ack(table, ["2"], T0);
    await setEpoch(table, "3", 1); // delivered since it was read at epoch 0
    const before = await rawRows(table);
    const read = [...ids, "6", "404"].map((id) => ({ id, epoch: 0 }));
    expect(await db.store.claim(table, read, T0, spec(), 42)).toEqual(["1", "4", "5"]);
    const after = await rawRows(table);
    for (const id of ["1", "4", "5"]) expect(after.get(id)).toEqual({ epoch: 1, timeNext: expected(T0, spec(), 0) + 42n, timeAcked: null });
    for (const id of ["2", "3", "6"]) expect(after.get(id)).toEqual(before.get(id)); // acked, stale epoch, not due yet
  });

  it("tells a contested claim's rows apart: each of two claims of the same read gets only the rows it changed", async () => {
    const table = await newTable("contest");
    const ids = Array.from({ length: 20 }, (_, i) => String(i + 1));
    await db.store.insertMessages(
      table,
      ids.map((id) => msg(id)),
    );
    const read = ids.map((id) => ({ id, epoch: 0 }));
    // Another node claimed the odd rows first, at the same time, with the same jitter: only the nonce differs.
    const odd = read.filter((r) => Number(r.id) % 2 === 1);
    expect(await db.store.claim(table, odd, T0, spec(), 7)).toEqual(odd.map((r) => r.id));
    expect(await db.store.claim(table, read, T0, spec(), 8)).toEqual(ids.filter((id) => Number(id) % 2 === 0));
    // And a claim of rows that all changed since the read claims none.
    expect(await db.store.claim(table, read, T0 + 1, spec(), 9)).toEqual([]);
    const rows = await rawRows(table);
    for (const id of ids) expect(rows.get(id)!.epoch).toBe(1);
  });

  it("does not overflow at a high epoch", async () => {
    const table = await newTable("overflow");
    await db.store.insertMessages(table, [msg("1"), msg("2")]);
    await setEpoch(table, "1", 100);
    await setEpoch(table, "2", 1_000_000);
    const s = spec({ minBackoffMs: 30_000, jitter: 1.333332 });
    expect(await db.store.claim(table, asRead(await rawRows(table), ["1", "2"]), T0, s, 0)).toEqual(["1", "2"]);
    const rows = await rawRows(table);
    const floor = msToNs(T0 + s.baseDelayMs + s.minBackoffMs);
    for (const id of ["1", "2"]) {
      const timeNext = rows.get(id)!.timeNext!;
      expect(timeNext > floor).toBe(true);
      expect(timeNext).toBe(expected(T0, s, 100));
    }
    expect(rows.get("1")!.epoch).toBe(101);
  });

  it("reschedules without counting a delivery", async () => {
    const table = await newTable("resched");
    await db.store.insertMessages(table, [msg("1"), msg("2"), msg("3")]);
    await setEpoch(table, "1", 3);
    await db.store.ack(table, ["3"], T0);
    expect(await db.store.reschedule(table, ["1", "2", "3"], T0 + 1, 2_500.5)).toBe(2);
    const rows = await rawRows(table);
    const due = msToNs(T0 + 1) + msToNs(2_500.5);
    expect(rows.get("1")).toMatchObject({ epoch: 3, timeNext: due });
    expect(rows.get("2")).toMatchObject({ epoch: 0, timeNext: due });
    expect(rows.get("3")).toMatchObject({ timeNext: null });
  });

  it("acks once: counts only rows acked by this call and hides them from reads", async () => {
    const table = await newTable("ack");
    await db.store.insertMessages(table, [msg("1"), msg("2"), msg("3"), msg("4", { timeNext: T0 + 60_000 })]);
    expect(await db.store.ack(table, ["1", "2"], T0)).toBe(2);
    expect(await db.store.ack(table, ["2", "3", "99"], T0)).toBe(1);
    expect(await db.store.ack(table, ["1", "2", "3"], T0)).toBe(0);
    expect(await db.store.readDue(table, T0 + 60_000, 10)).toEqual([expect.objectContaining({ id: "4" })]);
    await db.store.claim(table, [{ id: "4", epoch: 0 }], T0 + 60_000, spec({ baseDelayMs: 0, minBackoffMs: 1 }), 0);
    expect(await db.store.describeTable(table, T0)).toEqual({ ready: 0, delayed: 0, inFlight: 1, acked: 3 });
  });

  const acks = (...groups: string[][]) => groups.map((ids) => ({ ids, change: { kind: "ack" as const }, nowMs: T0 }));

  it("settles groups in one transaction: each counts its own, an id acked by an earlier group is left alone", async () => {
    const table = await newTable("settle");
    await db.store.insertMessages(
      table,
      ["1", "2", "3", "4", "5", "6", "7"].map((id) => msg(id)),
    );
    await setEpoch(table, "7", 2);
    expect(await db.store.ack(table, ["5"], T0)).toBe(1);
    expect(await db.store.settleGroups(table, acks(["1", "2"], [], ["2", "3", "99"], ["5", "4"]))).toEqual([2, 0, 1, 1]);
    expect(await db.store.settleGroups(table, acks(["1"]))).toEqual([0]);
    const nack = spec({ baseDelayMs: 0, minBackoffMs: 100, maxBackoffMs: 1_000, jitter: 1.5, incrementEpoch: false });
    const backoff = { kind: "backoff" as const, spec: nack };
    const mixed = await db.store.settleGroups(table, [
      { ids: ["6", "1"], change: { kind: "reschedule", delayMs: 2_000 }, nowMs: T0 + 1 },
      { ids: ["7"], change: backoff, nowMs: T0 + 2 },
      { ids: ["6"], change: { kind: "ack" }, nowMs: T0 + 3 },
      { ids: ["6"], change: { kind: "reschedule", delayMs: 5 }, nowMs: T0 + 4 },
    ]);
    expect(mixed).toEqual([1, 1, 1, 0]);
    const rows = await rawRows(table);
    for (const id of ["1", "2", "3", "4"]) expect(rows.get(id)).toMatchObject({ timeAcked: msToNs(T0), timeNext: null });
    expect(rows.get("6")).toMatchObject({ timeAcked: msToNs(T0 + 3), timeNext: null });
    // Each group counts from its own time; a client's backoff does not count a delivery.
    expect(rows.get("7")).toMatchObject({ epoch: 2, timeAcked: null, timeNext: expected(T0 + 2, nack, 2) });
  });

  it("writes nothing of a settlement batch the database refused, and leaves its connection with no open transaction", async () => {
    const table = await newTable("settlerefused");
    await db.store.insertMessages(
      table,
      ["1", "2", "3", "4", "5", "6"].map((id) => msg(id)),
    );
    // The second UPDATE of the batch is refused by the server, after the first one ran.
    await sql`CREATE TRIGGER ${sql.id(`${table}_refuse`)} BEFORE UPDATE ON ${sql.table(table)} FOR EACH ROW
      BEGIN IF NEW.id = 3 AND NEW.time_acked IS NOT NULL THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'; END IF; END`.execute(
      db.store.db,
    );
    await expect(db.store.settleGroups(table, acks(["1", "2"], ["3"]))).rejects.toThrow(/refused/);
    expect((await rawRows(table)).get("1")).toMatchObject({ timeAcked: null });
    // The batch pool's connections take the next batches; had the failed one stayed open there, their
    // START TRANSACTION would have committed its first UPDATE.
    for (let i = 0; i < 4; i++) expect(await db.store.settleGroups(table, acks([String(4 + (i % 3))], ["99"]))).toEqual([i < 3 ? 1 : 0, 0]);
    const rows = await rawRows(table);
    expect([1, 2, 3].map((id) => rows.get(String(id))?.timeAcked)).toEqual([null, null, null]);
    expect([4, 5, 6].map((id) => rows.get(String(id))?.timeAcked)).toEqual([msToNs(T0), msToNs(T0), msToNs(T0)]);
  });

  it("fenced updates change only messages whose delivery is current, in one transaction", async () => {
    const table = await newTable("fenced");
    await db.store.insertMessages(
      table,
      ["1", "2", "3", "4", "5"].map((id) => msg(id)),
    );
    for (const id of ["1", "2", "3", "4"]) await setEpoch(table, id, 3); // delivered with epoch 2, recorded
    await db.store.ack(table, ["4"], T0);
    const d = (id: string, epoch: number) => ({ id, epoch });

    // 1: current; 2: an older delivery (stale); 4: acked and 9: unknown (neither); 5: never delivered (stale).
    const acked = await db.store.updateDeliveries(table, [d("1", 2), d("2", 1), d("4", 2), d("9", 0), d("5", 0)], T0, { kind: "ack" });
    expect(acked).toEqual({ changed: 1, stale: [d("2", 1), d("5", 0)] });
    let rows = await rawRows(table);
    expect(rows.get("1")?.timeAcked).toBe(msToNs(T0));
    expect(rows.get("2")?.timeAcked).toBeNull();
    expect(rows.get("5")?.timeAcked).toBeNull();

    // extend: at least now + byMs, never earlier than the row already was; a row already due later is not
    // moved, and not counted.
    await db.store.reschedule(table, ["3"], T0, 60_000);
    expect(await db.store.updateDeliveries(table, [d("2", 2), d("3", 2)], T0, { kind: "extend", byMs: 10_000 })).toEqual({
      changed: 1,
      stale: [],
      unchanged: [d("3", 2)],
    });
    rows = await rawRows(table);
    expect(rows.get("2")?.timeNext).toBe(msToNs(T0) + msToNs(10_000));
    expect(rows.get("3")?.timeNext).toBe(msToNs(T0) + msToNs(60_000));

    expect(await db.store.updateDeliveries(table, [d("2", 2)], T0, { kind: "reschedule", delayMs: 5 })).toEqual({ changed: 1, stale: [] });
    expect((await rawRows(table)).get("2")?.timeNext).toBe(msToNs(T0) + msToNs(5));
    const backoff = await db.store.updateDeliveries(table, [d("2", 2)], T0, {
      kind: "backoff",
      spec: spec({ incrementEpoch: false, baseDelayMs: 0 }),
    });
    expect(backoff.changed).toBe(1);
    const nack = spec({ incrementEpoch: false, baseDelayMs: 0 });
    expect((await rawRows(table)).get("2")).toMatchObject({ epoch: 3, timeNext: expected(T0, nack, 3) });
    // release: a recorded delivery that never happened is undone (due now, epoch back by one).
    expect(await db.store.updateDeliveries(table, [d("2", 2)], T0 + 7, { kind: "release" })).toEqual({ changed: 1, stale: [] });
    expect((await rawRows(table)).get("2")).toMatchObject({ epoch: 2, timeNext: msToNs(T0 + 7) });
    expect(await db.store.updateDeliveries(table, [], T0, { kind: "ack" })).toEqual({ changed: 0, stale: [] });
  });

  it("dead-letters exhausted rows in one move, pages them newest first, redrives them, and drops them with the table", async () => {
    const table = await newTable("dead");
    await db.store.insertMessages(
      table,
      ["1", "2", "3", "4"].map((id) => msg(id, { priority: Number(id) })),
    );
    for (const id of ["1", "2", "3"]) await setEpoch(table, id, 3);
    await db.store.ack(table, ["3"], T0);
    expect(await db.store.countDead(table)).toBe(0); // no dead-letter table yet
    expect(await db.store.listDead(table, 10)).toEqual({ messages: [] });

    // 3 is acked and 4 has attempts left: only 1 and 2 move.
    expect(await db.store.deadLetter(table, ["1", "2", "3", "4"], 3, "out of attempts", T0)).toEqual(["1", "2"]);
    expect(await db.store.deadLetter(table, ["1"], 3, "again", T0 + 1)).toEqual([]);
    expect([...(await rawRows(table)).keys()]).toEqual(["3", "4"]);
    await db.store.insertMessages(table, [msg("5")]);
    await setEpoch(table, "5", 9);
    expect(await db.store.deadLetter(table, ["5"], 3, "later", T0 + 5)).toEqual(["5"]);
    expect(await db.store.countDead(table)).toBe(3);
    // The dead-letter table is not a queue.
    expect((await db.store.discoverTables()).some((t) => t.name === `${table}_dlq`)).toBe(false);

    const first = await db.store.listDead(table, 2);
    expect(first.messages.map((m) => m.id)).toEqual(["5", "2"]);
    expect(first.messages[1]).toEqual({ id: "2", priority: 2, epoch: 3, payload: '{"n":"2"}', reason: "out of attempts", deadAt: T0 });
    const second = await db.store.listDead(table, 2, first.next);
    expect(second).toEqual({ messages: [expect.objectContaining({ id: "1" })] });

    // 2 is re-enqueued under the same id: redriving it would clash, so it stays dead.
    await db.store.insertMessages(table, [msg("2")]);
    expect(await db.store.redrive(table, ["1", "2", "8"], T0 + 100, 1000)).toEqual({ redriven: ["1"], missing: ["8"], conflicts: ["2"] });
    expect((await rawRows(table)).get("1")).toEqual({ epoch: 0, timeNext: msToNs(T0 + 100), timeAcked: null });
    expect((await db.store.readDue(table, T0 + 100, 10)).find((r) => r.id === "1")?.payload).toBe('{"n":"1"}');
    // "All" skips the clash instead of stopping at it.
    expect(await db.store.redrive(table, undefined, T0 + 200, 1000)).toEqual({ redriven: ["5"], missing: [], conflicts: [] });
    expect((await db.store.listDead(table, 10)).messages.map((m) => m.id)).toEqual(["2"]);

    expect(await db.store.dropTable(table)).toBe(true);
    const { rows } = await sql`SHOW TABLES LIKE ${`${table}_dlq`}`.execute(db.store.db);
    expect(rows).toHaveLength(0);
  });

  it("dead-letters rows of a hand-made Vitess table (signed ids, VARBINARY payloads) and redrives them byte for byte", async () => {
    const table = db.table("vdead");
    await sql`CREATE TABLE ${sql.table(table)} (
        id bigint, priority bigint default 50, epoch bigint, time_next bigint default 0, time_acked bigint,
        message varbinary(128), primary key(id), index poller_idx(time_acked, priority, time_next desc)
      ) comment 'vitess_message,vt_ack_wait=30,vt_max_attempts=2'`.execute(db.store.db);
    await sql`INSERT INTO ${sql.table(table)} (id, priority, epoch, time_next, message)
      VALUES (7, 300, NULL, 0, X'00ff61'), (8, 1, 2, 0, '{"a":1}')`.execute(db.store.db);
    expect(await db.store.deadLetter(table, ["7", "8"], 2, "out of attempts", T0)).toEqual(["8"]); // 7: NULL epoch counts as 0
    await setEpoch(table, "7", 2);
    expect(await db.store.deadLetter(table, ["7"], 2, "out of attempts", T0)).toEqual(["7"]);
    const { rows: columns } = await sql<{ c: string; t: string }>`
      SELECT column_name AS c, column_type AS t FROM information_schema.columns
      WHERE table_schema = DATABASE() AND table_name = ${`${table}_dlq`} ORDER BY ordinal_position`.execute(db.store.db);
    // The message table's own types (MySQL 8 shows "bigint" where MariaDB shows "bigint(20)").
    expect(columns.map((r) => `${r.c} ${r.t.replace("bigint(20)", "bigint")}`)).toEqual([
      "id bigint",
      "priority bigint",
      "epoch bigint",
      "time_next bigint",
      "time_acked bigint",
      "message varbinary(128)",
      "reason varchar(1024)",
      "time_dead bigint",
    ]);
    expect((await db.store.listDead(table, 10)).messages.map((m) => [m.id, m.priority, m.payload])).toEqual([
      ["8", 1, '{"a":1}'],
      ["7", 300, JSON.stringify("\u0000\ufffda")],
    ]);
    expect((await db.store.redrive(table, undefined, T0, 1000)).redriven.sort()).toEqual(["7", "8"]);
    const { rows } = await sql<{ hex: string }>`SELECT HEX(message) AS hex FROM ${sql.table(table)} WHERE id = 7`.execute(db.store.db);
    expect(rows[0]?.hex).toBe("00FF61");
  });

  it("purges old acked rows in chunks, keeping unacked and recent ones", async () => {
    const table = await newTable("purge");
    const old = ["1", "2", "3", "4", "5"];
    await db.store.insertMessages(
      table,
      [...old, "6", "7"].map((id) => msg(id)),
    );
    await db.store.ack(table, old, T0 - 10_000);
    await db.store.ack(table, ["6"], T0);
    const cutoff = T0 - 5_000;
    expect(await db.store.purge(table, cutoff, 2)).toBe(2);
    expect(await db.store.purge(table, cutoff, 2)).toBe(2);
    expect(await db.store.purge(table, cutoff, 2)).toBe(1);
    expect(await db.store.purge(table, cutoff, 2)).toBe(0);
    expect([...(await rawRows(table)).keys()]).toEqual(["6", "7"]);
  });

  // --- plans -------------------------------------------------------------------------------------------

  it("reads due rows through poller_idx without a filesort", async () => {
    const table = await newTable("plan");
    const rows: NewMessage[] = [];
    for (let i = 1; i <= 600; i++) {
      rows.push(msg(String(i), { priority: i % 7, timeNext: T0 + ((i * 7919) % 1_000) * 1_000 - 500_000 }));
    }
    await db.store.insertMessages(table, rows);
    await db.store.ack(
      table,
      rows.filter((_, i) => i % 3 === 0).map((r) => r.id),
      T0,
    );
    await sql`ANALYZE TABLE ${sql.table(table)}`.execute(db.store.db);

    // Both forms of the poller's read: plain, and byte-bounded (large payloads left out, lengths read).
    for (const inline of [undefined, 4_096]) {
      const { rows: plan } = await sql<Record<string, unknown>>`EXPLAIN ${readDueQuery(table, T0, 100, inline)}`.execute(db.store.db);
      const described = JSON.stringify(plan);
      expect(plan, described).toHaveLength(1);
      expect(plan[0]?.key, described).toBe("poller_idx");
      expect(String(plan[0]?.Extra ?? ""), described).not.toMatch(/filesort/i);
    }
  });
});
