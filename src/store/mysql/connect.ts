/**
 * Connection setup: a mysql2 pool, bounded and labelled by guarded-pool.ts, wrapped in a Kysely instance.
 *
 * The instance is `Kysely<any>`: message tables are found at run time, so their statements are written with
 * the `sql` tag and validated identifiers (values.ts); the tables whose shape tablemq fixes go through the
 * typed builder over schema.ts's `TablemqDatabase` (webhooks, discovery).
 */
import { Kysely, MysqlDialect } from "kysely";
import { createPool, format, type Pool, type PoolOptions } from "mysql2";
import { guardPool } from "./guarded-pool.js";

// mysql2 does not re-export its typeCast parameter types; derive them from the pool options.
type TypeCastFn = Extract<NonNullable<PoolOptions["typeCast"]>, (...args: never[]) => unknown>;
type TypeCastField = Parameters<TypeCastFn>[0];
type TypeCastNext = Parameters<TypeCastFn>[1];

export interface MysqlConnectOptions {
  /** Most requests waiting for a pooled connection (default 1000). */
  queueLimit?: number;
  /** Pool size. Default 10. */
  connectionLimit?: number;
  /**
   * Longest a statement may take, from asking for a pooled connection to its answer (guarded-pool.ts).
   * Default 10 s.
   */
  statementTimeoutMs?: number;
  /** How long to wait for a TCP connection + handshake. Default: the statement timeout. */
  connectTimeoutMs?: number;
}

export const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;

export interface MysqlUrl {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** Parses `mysql://user:pass@host:port/db` (user and password may be percent-encoded). */
export function parseMysqlUrl(url: string): MysqlUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`invalid MySQL URL: ${redact(url)}`);
  }
  if (u.protocol !== "mysql:" && u.protocol !== "mariadb:") {
    throw new Error(`MySQL URL must start with mysql://, got ${redact(url)}`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (database === "" || database.includes("/")) {
    throw new Error(`MySQL URL must name one database (mysql://user:pass@host:port/db), got ${redact(url)}`);
  }
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1",
    port: u.port === "" ? 3306 : Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database,
  };
}

/** The URL with its password hidden, for error messages and logs. */
export function redact(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*:)[^@]*@/i, "$1***@");
}

/**
 * Returns JSON columns as their raw text. mysql2 would JSON.parse them: MySQL 8 marks them with type JSON,
 * and MariaDB (where JSON is LONGTEXT) marks them with the extended format `json`, which mysql2 3.x also
 * parses. The payload is only passed through, so parsing would cost time and lose exactness.
 */
export function jsonAsText(field: TypeCastField, next: TypeCastNext): unknown {
  if (field.type === "JSON" || field.extendedFormat === "json") return field.string("utf8");
  return next();
}

export function poolOptions(url: string, opts: MysqlConnectOptions = {}): PoolOptions {
  const { host, port, user, password, database } = parseMysqlUrl(url);
  return {
    host,
    port,
    user,
    password,
    database,
    charset: "utf8mb4",
    connectionLimit: opts.connectionLimit ?? 10,
    connectTimeout: opts.connectTimeoutMs ?? opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
    // Bounded: past this many requests waiting for a connection, a request fails ("Queue limit reached.",
    // answered 429) instead of piling up while the database is slow.
    queueLimit: opts.queueLimit ?? 1_000,
    // BIGINT UNSIGNED ids and nanosecond times exceed 2^53: always read them as decimal strings.
    supportBigNumbers: true,
    bigNumberStrings: true,
    // Either of these keeps JSON as text; both, so a query-level typeCast override cannot undo it.
    jsonStrings: true,
    typeCast: jsonAsText,
    queryFormat: formatBound,
  };
}

/**
 * mysql2's own formatting, without its scan of a statement that has nothing to bind: mysql2 reads the whole
 * text looking for `?` even when there are no values, and the store's largest statements (inserts with
 * their payloads, id lists) carry none: their values are checked literals (values.ts). That scan was about
 * 2 % of the server's CPU under load. With values, it is mysql2's `format`, called as mysql2 calls it.
 */
export function formatBound(sql: string, values: unknown, timezone?: string): string {
  if (values === undefined || values === null || (Array.isArray(values) && values.length === 0)) return sql;
  return format(sql, values as Parameters<typeof format>[1], false, timezone);
}

/**
 * Run first on every new connection. String literals are written backslash-escaped (values.ts `sqlString`,
 * and mysql2's formatting of every bound string): on a server whose sql_mode has NO_BACKSLASH_ESCAPES, `\'`
 * would end a literal, so a payload could be read as SQL. The session drops that one mode and keeps the rest.
 */
export const SESSION_SETUP_SQL =
  "SET SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','))";

/** A new mysql2 pool whose connections run `setupSql` before anything else (commands run in order). */
export function createSessionPool(options: PoolOptions, setupSql = SESSION_SETUP_SQL): Pool {
  const pool = createPool(options);
  pool.on("connection", (connection) => {
    // A connection that cannot be set up is closed: the statement queued behind it then fails as never
    // sent (mysql2 writes it to the ended socket: guarded-pool.ts `neverSent`).
    connection.query(setupSql, (err) => err && connection.destroy());
  });
  return pool;
}

/** A Kysely instance over a new, guarded mysql2 pool. `db.destroy()` closes the pool. */
export function createMysqlDatabase(url: string, opts: MysqlConnectOptions = {}): Kysely<any> {
  return guardedDatabase(poolOptions(url, opts), opts);
}

/** Connections of the batch pool (createBatchDatabase): at most this many settlement batches run at once. */
const BATCH_CONNECTIONS = 2;

/**
 * The store's second, small pool, whose connections run several statements per query (mysql2's
 * `multipleStatements`): a coalesced batch of acks and postpones is one transaction in one round trip.
 * Only statements the store builds from checked ids and names run there (messages.ts `settleGroups`);
 * every other statement uses the main pool, where one query is one statement.
 */
export function createBatchDatabase(url: string, opts: MysqlConnectOptions = {}): Kysely<any> {
  return guardedDatabase({ ...poolOptions(url, { ...opts, connectionLimit: BATCH_CONNECTIONS }), multipleStatements: true }, opts);
}

function guardedDatabase(options: PoolOptions, opts: MysqlConnectOptions): Kysely<any> {
  const pool = guardPool(createSessionPool(options), opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS);
  return new Kysely<any>({ dialect: new MysqlDialect({ pool }) });
}
