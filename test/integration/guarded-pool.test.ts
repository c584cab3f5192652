/**
 * src/store/mysql/guarded-pool.ts against the real database, through a TCP proxy that can hang or cut it:
 * every statement is bounded in time, a timed-out connection is never reused, and a failure says whether
 * the statement can have run.
 */
import { Kysely, MysqlDialect, sql } from "kysely";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { OutcomeUnknownError, UnavailableError } from "../../src/errors.js";
import { resolveOptions } from "../../src/options.js";
import { createSessionPool } from "../../src/store/mysql/connect.js";
import { guardPool } from "../../src/store/mysql/guarded-pool.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { describeWithDatabase, testDatabaseUrl, useTestStore } from "../support/database.js";
import { lockTable, waitForLockWait } from "../support/table-lock.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { sleep } from "../support/wait.js";

const TIMEOUT_MS = 300;

describeWithDatabase("guarded pool", () => {
  const direct = useTestStore();
  let proxy: TcpProxy;
  let store: MysqlStore; // through the proxy, one connection, TIMEOUT_MS per statement

  beforeAll(async () => {
    const target = new URL(testDatabaseUrl());
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 3306));
  });
  afterEach(async () => {
    proxy.restore();
    await store?.close();
  });
  afterAll(async () => {
    await proxy?.close();
  });

  function open(): MysqlStore {
    const viaProxy = new URL(testDatabaseUrl());
    viaProxy.port = String(proxy.port);
    store = createMysqlStore(viaProxy.toString(), { connectionLimit: 1, statementTimeoutMs: TIMEOUT_MS });
    return store;
  }

  const connectionId = async (s: MysqlStore): Promise<number> =>
    Number((await sql<{ id: number }>`SELECT CONNECTION_ID() AS id`.execute(s.db)).rows[0]!.id);

  /** Runs `work`; resolves with its error (or undefined) and how long it took. */
  async function timed(work: Promise<unknown>): Promise<{ err: unknown; ms: number }> {
    const started = Date.now();
    const err = await work.then(
      () => undefined,
      (e: unknown) => e,
    );
    return { err, ms: Date.now() - started };
  }

  it("fails a statement the database does not answer with OutcomeUnknownError after the timeout, and never reuses its connection", async () => {
    const s = open();
    const before = await connectionId(s);
    proxy.hang();
    const { err, ms } = await timed(sql`SELECT 1`.execute(s.db));
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(ms).toBeLessThan(TIMEOUT_MS + 500);
    proxy.restore();
    // The pool's only connection was the timed-out one: the next statement gets a new one, at once.
    const { err: next, ms: nextMs } = await timed(connectionId(s));
    expect(next).toBeUndefined();
    expect(nextMs).toBeLessThan(TIMEOUT_MS);
    expect(await connectionId(s)).not.toBe(before);
  });

  it("fails a statement that gets no connection within the timeout with UnavailableError: it was never sent", async () => {
    const s = open();
    await connectionId(s);
    proxy.hang();
    const first = timed(sql`SELECT 1`.execute(s.db)); // holds the only connection, unanswered
    await sleep(50);
    const { err, ms } = await timed(sql`SELECT 2`.execute(s.db)); // waits for a connection
    expect(err).toBeInstanceOf(UnavailableError);
    expect(ms).toBeLessThan(TIMEOUT_MS + 500);
    expect((await first).err).toBeInstanceOf(OutcomeUnknownError);
  });

  it("fails a statement with UnavailableError when the database refuses connections", async () => {
    const s = open();
    await connectionId(s);
    proxy.cut();
    // Let the pool see its connection close. (A statement sent on it before that is written to a dead
    // socket, and counts as unknown: from here, nothing tells it apart from a statement the database got.)
    await sleep(50);
    const { err, ms } = await timed(sql`SELECT 1`.execute(s.db));
    expect(err).toBeInstanceOf(UnavailableError);
    expect(ms).toBeLessThan(TIMEOUT_MS + 500);
  });

  it("fails a statement whose connection is lost while the database runs it with OutcomeUnknownError", async () => {
    const s = open();
    const table = direct.table("lost");
    await direct.store.createTable(table, resolveOptions());
    const lock = await lockTable(testDatabaseUrl(), table);
    try {
      const insert = timed(s.insertMessages(table, [{ id: "1", priority: 50, timeNext: Date.now(), payload: "1" }]));
      await waitForLockWait(direct.store.db, table);
      proxy.cut();
      expect((await insert).err).toBeInstanceOf(OutcomeUnknownError);
    } finally {
      await lock.release();
    }
  });

  it("fails a statement queued behind a session setup that failed with UnavailableError: it was never sent", async () => {
    const pool = createSessionPool({ uri: testDatabaseUrl(), connectionLimit: 1 }, "SET SESSION no_such_variable = 1");
    const db = new Kysely<any>({ dialect: new MysqlDialect({ pool: guardPool(pool, TIMEOUT_MS) }) });
    try {
      const { err } = await timed(sql`SELECT 1`.execute(db));
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toMatch(/connection was closed/);
    } finally {
      await db.destroy();
    }
  });

  it("reports a read that timed out as UnavailableError: a read writes nothing", async () => {
    const s = open();
    await connectionId(s);
    proxy.hang();
    const { err } = await timed(s.discoverTables());
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).cause).toBeInstanceOf(OutcomeUnknownError);
  });

  it("passes an error the database answered through unchanged (the statement ran and failed)", async () => {
    const s = open();
    const { err } = await timed(sql`SELECT * FROM no_such_table_here`.execute(s.db));
    expect(err).not.toBeInstanceOf(UnavailableError);
    expect(err).not.toBeInstanceOf(OutcomeUnknownError);
    expect(err).toMatchObject({ errno: 1146 });
    expect(await connectionId(s)).toBeGreaterThan(0); // and the connection is still good
  });
});
