import { readFileSync } from "node:fs";
import { OptionsError, resolveOptions, type TableOptions } from "../options.js";
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_PAYLOAD_BYTES, TABLE_NAME, TABLE_NAME_PATTERN } from "../model/limits.js";
import { DATABASE_URL } from "../store/urls.js";

/** Everything `tablemq serve` can be told, with its environment variable and default (see README). */

/**
 * Open connections accepted by default (TABLEMQ_MAX_CONNECTIONS). Measured (bench many-tables; issue 29):
 * 10,000 idle WebSocket subscribers, one per table, took ~220 MB of RSS (~22 KB each, with their tables'
 * managers) and ~2.5 % of a core (pings, looks), so 20,000 stay under 500 MB, half the heap `npm start` gives the server
 * (--max-old-space-size=1024). Each connection is also an open file: raise the process's limit to match.
 */
export const DEFAULT_MAX_CONNECTIONS = 20_000;
export interface ServerConfig {
  databaseUrl: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Largest request body in bytes. */
  bodyLimitBytes: number;
  /** Most messages (enqueue) or ids (ack, postpone) in one request. */
  maxBatch: number;
  /** Largest single payload, as JSON text bytes. */
  maxPayloadBytes: number;
  maxSubscribersPerTable: number;
  /** maxInFlight of a subscriber that does not ask for one. */
  defaultMaxInFlight: number;
  /** Largest maxInFlight a subscriber may ask for. */
  maxMaxInFlight: number;
  /** Post-send postpones running at once across all tables. */
  postponeConcurrency: number;
  /** Bytes of payload all tables' caches hold at once (manager/byte-budget.ts). */
  cacheMaxBytes: number;
  /** Bytes of payload all enqueues hold between their acceptance and their commit (manager/byte-budget.ts). */
  enqueueMaxBytes: number;
  schemaRefreshMs: number;
  dbPoolSize: number;
  /**
   * Longest a database statement may take, from asking for a pooled connection to its answer; also how
   * long an enqueue may wait for its turn to write, and how long a write whose outcome is unknown is sent
   * again (RELIABILITY.md).
   */
  dbStatementTimeoutMs: number;
  /** How long shutdown waits for in-flight work before it closes anyway. */
  shutdownTimeoutMs: number;
  /** WebSocket ping period; a peer that misses a pong for this long is dropped. */
  pingIntervalMs: number;
  /** Options for tables created without them. */
  tableDefaults: Partial<TableOptions>;
  /** Bearer tokens and their scopes per table ("*" = every table); empty = authentication off. */
  authTokens: TokenTable;
  /** A JSON file holding the token table (instead of authTokens); "" = none. */
  authTokensFile: string;
  /** "open": /metrics needs no token; "token": it needs a token with the metrics scope. */
  metricsAuth: "open" | "token";
  /** Requests per second per token (or client address without one); 0 = no limit. */
  rateLimitPerSec: number;
  /** Requests a client may make at once above the rate; 0 = one second's worth (rateLimitPerSec). */
  rateLimitBurst: number;
  /** Open TCP connections (HTTP and WebSocket) the server accepts; 0 = no limit. */
  maxConnections: number;
  /** First wait before a failed webhook destination is tried again; doubles per failure. */
  webhookRetryMinMs: number;
  /** Longest wait between tries of a failed webhook destination. */
  webhookRetryMaxMs: number;
  /** redis://… of the bus that wakes the other nodes on this database at once; "" = none (README: several nodes). */
  redisUrl: string;
  /** Where the embedded store's statements run: a worker thread of its own, or the server's event loop. */
  sqliteThread: SqliteThread;
  /** Longest time between polls of a table while other nodes are live and no bus wakes this one. */
  peerPollMs: number;
  /** Between this node's heartbeats in tablemq_nodes; a node silent for 3 of them is taken for dead. */
  nodeHeartbeatMs: number;
  /** How long a node's lease on a webhook lasts unless renewed: a dead node's webhooks move after it. */
  webhookLeaseMs: number;
  /** The URL other nodes and operators reach this node at, listed in GET /v1/nodes; "" = the one it listens on. */
  nodeUrl: string;
  /** "on": the dashboard is served at /ui/; "off": it is not (the API is the same either way). */
  ui: "on" | "off";
}

/**
 * What a token may do on a table: publish (enqueue), consume (subscribe, ack, postpone), admin (create,
 * change, drop, pause, delete and purge messages), read (look: describe, browse, dead letters, rates; the
 * dashboard's read-only token).
 */
export const TABLE_SCOPES = ["publish", "consume", "admin", "read"] as const;
/** Server-wide scopes, granted under "*" only. */
export const SERVER_SCOPES = ["metrics"] as const;
export type Scope = (typeof TABLE_SCOPES)[number] | (typeof SERVER_SCOPES)[number];
/** token → table name or "*" → scopes. */
export type TokenTable = Record<string, Record<string, Scope[]>>;

export const DEFAULT_CONFIG: Readonly<ServerConfig> = Object.freeze({
  databaseUrl: "sqlite:./data/tablemq.db",
  host: "127.0.0.1",
  port: 8080,
  logLevel: "info",
  bodyLimitBytes: 8 * 1024 * 1024,
  maxBatch: DEFAULT_MAX_BATCH,
  maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
  maxSubscribersPerTable: 1000,
  defaultMaxInFlight: 100,
  maxMaxInFlight: 10_000,
  postponeConcurrency: 4,
  cacheMaxBytes: 64 * 1024 * 1024,
  enqueueMaxBytes: 64 * 1024 * 1024,
  schemaRefreshMs: 10_000,
  dbPoolSize: 10,
  dbStatementTimeoutMs: 10_000,
  shutdownTimeoutMs: 10_000,
  pingIntervalMs: 30_000,
  tableDefaults: {},
  authTokens: {},
  authTokensFile: "",
  metricsAuth: "open",
  rateLimitPerSec: 0,
  rateLimitBurst: 0,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  webhookRetryMinMs: 1_000,
  webhookRetryMaxMs: 512_000,
  redisUrl: "",
  peerPollMs: 1_000,
  nodeHeartbeatMs: 2_000,
  webhookLeaseMs: 10_000,
  nodeUrl: "",
  sqliteThread: "worker",
  ui: "on",
});

type Kind = "string" | "int" | "level" | "thread" | "json-options" | "json-tokens" | "metrics-auth" | "on-off";

export type SqliteThread = "worker" | "main";
const THREADS: readonly SqliteThread[] = ["worker", "main"];

/** Each setting: its config key, environment variable, CLI flag and kind. */
export const SETTINGS: ReadonlyArray<{ key: keyof ServerConfig; env: string; flag: string; kind: Kind; min?: number; help: string }> = [
  {
    key: "databaseUrl",
    env: "TABLEMQ_DATABASE_URL",
    flag: "--database-url",
    kind: "string",
    help: "mysql://user:pass@host:port/db, or sqlite:<path> (the default: sqlite:./data/tablemq.db)",
  },
  {
    key: "sqliteThread",
    env: "TABLEMQ_SQLITE_THREAD",
    flag: "--sqlite-thread",
    kind: "thread",
    help: "worker|main: where the embedded SQLite store's statements run (a worker thread keeps fsyncs off the event loop)",
  },
  { key: "host", env: "TABLEMQ_HOST", flag: "--host", kind: "string", help: "address to listen on" },
  { key: "port", env: "TABLEMQ_PORT", flag: "--port", kind: "int", min: 0, help: "port to listen on (0 = any free port)" },
  { key: "logLevel", env: "TABLEMQ_LOG_LEVEL", flag: "--log-level", kind: "level", help: "fatal|error|warn|info|debug|trace|silent" },
  {
    key: "bodyLimitBytes",
    env: "TABLEMQ_BODY_LIMIT_BYTES",
    flag: "--body-limit-bytes",
    kind: "int",
    min: 1024,
    help: "largest request body",
  },
  { key: "maxBatch", env: "TABLEMQ_MAX_BATCH", flag: "--max-batch", kind: "int", min: 1, help: "most messages or ids per request" },
  {
    key: "maxPayloadBytes",
    env: "TABLEMQ_MAX_PAYLOAD_BYTES",
    flag: "--max-payload-bytes",
    kind: "int",
    min: 16,
    help: "largest payload (JSON bytes)",
  },
  {
    key: "maxSubscribersPerTable",
    env: "TABLEMQ_MAX_SUBSCRIBERS_PER_TABLE",
    flag: "--max-subscribers-per-table",
    kind: "int",
    min: 1,
    help: "subscribers per table",
  },
  {
    key: "defaultMaxInFlight",
    env: "TABLEMQ_DEFAULT_MAX_IN_FLIGHT",
    flag: "--default-max-in-flight",
    kind: "int",
    min: 1,
    help: "unacked messages per subscriber by default",
  },
  {
    key: "maxMaxInFlight",
    env: "TABLEMQ_MAX_MAX_IN_FLIGHT",
    flag: "--max-max-in-flight",
    kind: "int",
    min: 1,
    help: "largest maxInFlight a subscriber may ask for",
  },
  {
    key: "postponeConcurrency",
    env: "TABLEMQ_POSTPONE_CONCURRENCY",
    flag: "--postpone-concurrency",
    kind: "int",
    min: 1,
    help: "concurrent post-send postpones",
  },
  {
    key: "cacheMaxBytes",
    env: "TABLEMQ_CACHE_MAX_BYTES",
    flag: "--cache-max-bytes",
    kind: "int",
    min: 1024,
    help: "payload bytes all tables' caches hold at once",
  },
  {
    key: "enqueueMaxBytes",
    env: "TABLEMQ_ENQUEUE_MAX_BYTES",
    flag: "--enqueue-max-bytes",
    kind: "int",
    min: 1024,
    help: "payload bytes of enqueues waiting for their commit, past which enqueues get 429",
  },
  {
    key: "schemaRefreshMs",
    env: "TABLEMQ_SCHEMA_REFRESH_MS",
    flag: "--schema-refresh-ms",
    kind: "int",
    min: 100,
    help: "how often to look for table changes",
  },
  { key: "dbPoolSize", env: "TABLEMQ_DB_POOL_SIZE", flag: "--db-pool-size", kind: "int", min: 1, help: "database connections" },
  {
    key: "dbStatementTimeoutMs",
    env: "TABLEMQ_DB_STATEMENT_TIMEOUT_MS",
    flag: "--db-statement-timeout-ms",
    kind: "int",
    min: 100,
    help: "longest a database statement may take (and an unsettled write is retried)",
  },
  {
    key: "shutdownTimeoutMs",
    env: "TABLEMQ_SHUTDOWN_TIMEOUT_MS",
    flag: "--shutdown-timeout-ms",
    kind: "int",
    min: 0,
    help: "graceful shutdown deadline",
  },
  {
    key: "pingIntervalMs",
    env: "TABLEMQ_PING_INTERVAL_MS",
    flag: "--ping-interval-ms",
    kind: "int",
    min: 100,
    help: "WebSocket ping period",
  },
  {
    key: "tableDefaults",
    env: "TABLEMQ_TABLE_DEFAULTS",
    flag: "--table-defaults",
    kind: "json-options",
    help: 'JSON, e.g. {"ackWaitMs":10000}',
  },
  {
    key: "authTokens",
    env: "TABLEMQ_AUTH_TOKENS",
    flag: "--auth-tokens",
    kind: "json-tokens",
    help: 'bearer tokens, JSON {"<token>": {"<table>|*": ["publish","consume","admin","read","metrics"]}}',
  },
  {
    key: "authTokensFile",
    env: "TABLEMQ_AUTH_TOKENS_FILE",
    flag: "--auth-tokens-file",
    kind: "string",
    help: "a JSON file with the bearer tokens (instead of TABLEMQ_AUTH_TOKENS)",
  },
  {
    key: "metricsAuth",
    env: "TABLEMQ_METRICS_AUTH",
    flag: "--metrics-auth",
    kind: "metrics-auth",
    help: "open|token: whether /metrics needs a token with the metrics scope",
  },
  {
    key: "ui",
    env: "TABLEMQ_UI",
    flag: "--ui",
    kind: "on-off",
    help: "on|off: whether the dashboard is served at /ui/",
  },
  {
    key: "rateLimitPerSec",
    env: "TABLEMQ_RATE_LIMIT_PER_SEC",
    flag: "--rate-limit-per-sec",
    kind: "int",
    min: 0,
    help: "requests per second per token or client address (0 = no limit)",
  },
  {
    key: "rateLimitBurst",
    env: "TABLEMQ_RATE_LIMIT_BURST",
    flag: "--rate-limit-burst",
    kind: "int",
    min: 0,
    help: "requests allowed at once above the rate (0 = the rate)",
  },
  {
    key: "maxConnections",
    env: "TABLEMQ_MAX_CONNECTIONS",
    flag: "--max-connections",
    kind: "int",
    min: 0,
    help: `open connections accepted (0 = no limit; default ${DEFAULT_MAX_CONNECTIONS})`,
  },
  {
    key: "webhookRetryMinMs",
    env: "TABLEMQ_WEBHOOK_RETRY_MIN_MS",
    flag: "--webhook-retry-min-ms",
    kind: "int",
    min: 1,
    help: "first wait before retrying a failed webhook (doubles per failure)",
  },
  {
    key: "webhookRetryMaxMs",
    env: "TABLEMQ_WEBHOOK_RETRY_MAX_MS",
    flag: "--webhook-retry-max-ms",
    kind: "int",
    min: 1,
    help: "longest wait between webhook retries",
  },
  {
    key: "redisUrl",
    env: "TABLEMQ_REDIS_URL",
    flag: "--redis-url",
    kind: "string",
    help: "redis://host:port of the bus between nodes on one database (unset = none: nodes poll)",
  },
  {
    key: "peerPollMs",
    env: "TABLEMQ_PEER_POLL_MS",
    flag: "--peer-poll-ms",
    kind: "int",
    min: 50,
    help: "poll at least this often while other nodes are live and the bus is off or down",
  },
  {
    key: "nodeHeartbeatMs",
    env: "TABLEMQ_NODE_HEARTBEAT_MS",
    flag: "--node-heartbeat-ms",
    kind: "int",
    min: 100,
    help: "between heartbeats in tablemq_nodes (a node is dead after 3 missed)",
  },
  {
    key: "webhookLeaseMs",
    env: "TABLEMQ_WEBHOOK_LEASE_MS",
    flag: "--webhook-lease-ms",
    kind: "int",
    min: 300,
    help: "how long a node's lease on a webhook lasts unless renewed",
  },
  {
    key: "nodeUrl",
    env: "TABLEMQ_NODE_URL",
    flag: "--node-url",
    kind: "string",
    help: "this node's URL as GET /v1/nodes lists it (default: the address it listens on)",
  },
];

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * Builds the configuration: defaults, then environment variables, then explicit values (CLI flags, as
 * strings or already typed). A bad value is a ConfigError naming the variable or flag.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<keyof ServerConfig, unknown>> = {},
): ServerConfig {
  const config: ServerConfig = { ...DEFAULT_CONFIG, tableDefaults: {}, authTokens: {} };
  const target = config as unknown as Record<string, unknown>;
  /** Where each value came from, for error messages: the variable or the flag. */
  const source = new Map<keyof ServerConfig, string>();
  for (const s of SETTINGS) {
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== "") {
      target[s.key] = parse(s, fromEnv, s.env);
      source.set(s.key, s.env);
    }
    const fromFlag = overrides[s.key];
    if (fromFlag !== undefined) {
      target[s.key] = typeof fromFlag === "string" ? parse(s, fromFlag, s.flag) : fromFlag;
      source.set(s.key, s.flag);
    }
  }
  if (config.authTokensFile !== "") {
    const fileName = source.get("authTokensFile") ?? "TABLEMQ_AUTH_TOKENS_FILE";
    if (source.has("authTokens")) {
      throw new ConfigError(`${fileName} and ${source.get("authTokens") ?? "TABLEMQ_AUTH_TOKENS"} are both set: give the tokens one way`);
    }
    let text: string;
    try {
      text = readFileSync(config.authTokensFile, "utf8");
    } catch (err) {
      throw new ConfigError(
        `${fileName}: cannot read ${JSON.stringify(config.authTokensFile)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
    config.authTokens = parseTokenTable(
      parseJsonTokens(text, `${fileName} (${config.authTokensFile})`),
      `${fileName} (${config.authTokensFile})`,
    );
  } else {
    config.authTokens = parseTokenTable(config.authTokens, source.get("authTokens") ?? "TABLEMQ_AUTH_TOKENS");
  }
  checkMetricsAuth(config.metricsAuth, config.authTokens);
  if (config.defaultMaxInFlight > config.maxMaxInFlight) {
    throw new ConfigError(
      `TABLEMQ_DEFAULT_MAX_IN_FLIGHT (${config.defaultMaxInFlight}) must not exceed TABLEMQ_MAX_MAX_IN_FLIGHT (${config.maxMaxInFlight})`,
    );
  }
  if (config.webhookRetryMinMs > config.webhookRetryMaxMs) {
    throw new ConfigError(
      `TABLEMQ_WEBHOOK_RETRY_MIN_MS (${config.webhookRetryMinMs}) must not exceed TABLEMQ_WEBHOOK_RETRY_MAX_MS (${config.webhookRetryMaxMs})`,
    );
  }
  if (!DATABASE_URL.test(config.databaseUrl))
    throw new ConfigError(
      `TABLEMQ_DATABASE_URL must start with mysql:// or sqlite: (then a file path), got ${JSON.stringify(redactUrl(config.databaseUrl))}`,
    );
  if (config.redisUrl && !config.databaseUrl.startsWith("mysql://"))
    throw new ConfigError("TABLEMQ_REDIS_URL is for several nodes on one MySQL database; the embedded SQLite store serves one node");
  return config;
}

function parse(s: (typeof SETTINGS)[number], raw: string, name: string): unknown {
  switch (s.kind) {
    case "string":
      return raw;
    case "on-off":
      if (raw !== "on" && raw !== "off") throw new ConfigError(`${name} must be on or off, got ${JSON.stringify(raw)}`);
      return raw;
    case "thread":
      if (!(THREADS as readonly string[]).includes(raw))
        throw new ConfigError(`${name} must be one of ${THREADS.join("|")}, got ${JSON.stringify(raw)}`);
      return raw;
    case "level":
      if (!LEVELS.includes(raw)) throw new ConfigError(`${name} must be one of ${LEVELS.join("|")}, got ${JSON.stringify(raw)}`);
      return raw;
    case "int": {
      const n = Number(raw);
      if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < (s.min ?? 0)) {
        throw new ConfigError(`${name} must be a whole number >= ${s.min ?? 0}, got ${JSON.stringify(raw)}`);
      }
      if (s.key === "port" && n > 65535) throw new ConfigError(`${name} must be at most 65535, got ${n}`);
      return n;
    }
    case "json-options": {
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        throw new ConfigError(`${name} must be a JSON object, got ${JSON.stringify(raw)}`);
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(`${name} must be a JSON object`);
      try {
        resolveOptions(value as Partial<TableOptions>);
      } catch (err) {
        if (err instanceof OptionsError) throw new ConfigError(`${name}: ${err.message}`);
        throw err;
      }
      return value;
    }
    case "json-tokens":
      return parseTokenTable(parseJsonTokens(raw, name), name);
    case "metrics-auth":
      if (raw !== "open" && raw !== "token") throw new ConfigError(`${name} must be open or token, got ${JSON.stringify(raw)}`);
      return raw;
  }
}

/** JSON.parse for the token table; the error never quotes the text (it holds secrets). */
function parseJsonTokens(raw: string, name: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    const where = /position \d+/.exec((err as Error).message)?.[0];
    throw new ConfigError(
      `${name} must be JSON like {"<token>": {"<table>|*": ["publish","consume","admin"]}}: malformed JSON${where ? ` at ${where}` : ""}`,
    );
  }
}

/** TABLEMQ_METRICS_AUTH=token needs a token that can read /metrics. */
export function checkMetricsAuth(metricsAuth: unknown, tokens: TokenTable): void {
  if (metricsAuth !== "open" && metricsAuth !== "token") {
    throw new ConfigError(`TABLEMQ_METRICS_AUTH must be open or token, got ${JSON.stringify(metricsAuth)}`);
  }
  if (metricsAuth === "token" && !Object.values(tokens).some((grants) => grants["*"]?.includes("metrics"))) {
    throw new ConfigError(
      'TABLEMQ_METRICS_AUTH is token, but no token in TABLEMQ_AUTH_TOKENS has the metrics scope (under "*"): nothing could read /metrics',
    );
  }
}

/** Token characters: visible ASCII, no spaces (RFC 6750 b64token is a subset). */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

/**
 * Checks a token table: `{"<token>": {"<table>" | "*": ["publish" | "consume" | "admin" | "metrics", ...]}}`.
 * Errors name the token by its position (#1, #2...), never by its value.
 */
export function parseTokenTable(value: unknown, name: string): TokenTable {
  const shape = `must be a JSON object {"<token>": {"<table>|*": ["publish","consume","admin"]}}`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(`${name} ${shape}`);
  const table: TokenTable = {};
  Object.entries(value).forEach(([token, grants], i) => {
    const which = `${name}: token #${i + 1}`;
    if (token.length === 0) throw new ConfigError(`${which} is empty`);
    if (!TOKEN_CHARS.test(token))
      throw new ConfigError(`${which} has a character that is not visible ASCII (spaces and control characters are not allowed)`);
    if (typeof grants !== "object" || grants === null || Array.isArray(grants)) {
      throw new ConfigError(`${which}: its grants must be an object {"<table>|*": [scopes]}`);
    }
    const checked: Record<string, Scope[]> = {};
    for (const [tableName, scopes] of Object.entries(grants as Record<string, unknown>)) {
      if (tableName !== "*" && !TABLE_NAME.test(tableName)) {
        throw new ConfigError(`${which}: ${JSON.stringify(tableName)} is not a table name (${TABLE_NAME_PATTERN}) or "*"`);
      }
      if (!Array.isArray(scopes)) throw new ConfigError(`${which}: the scopes of ${JSON.stringify(tableName)} must be an array`);
      for (const scope of scopes) {
        const isTable = (TABLE_SCOPES as readonly unknown[]).includes(scope);
        const isServer = (SERVER_SCOPES as readonly unknown[]).includes(scope);
        if (!isTable && !isServer) {
          throw new ConfigError(
            `${which}: unknown scope ${JSON.stringify(scope)} on ${JSON.stringify(tableName)} (scopes: ${[...TABLE_SCOPES, ...SERVER_SCOPES].join(", ")})`,
          );
        }
        if (isServer && tableName !== "*")
          throw new ConfigError(
            `${which}: the ${String(scope)} scope is server-wide: grant it under "*", not ${JSON.stringify(tableName)}`,
          );
      }
      checked[tableName] = [...new Set(scopes as Scope[])];
    }
    table[token] = checked;
  });
  return table;
}

/** The URL with its password hidden, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@");
}
