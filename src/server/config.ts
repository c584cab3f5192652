import { OptionsError, resolveOptions, type TableOptions } from "../options.js";

/** Everything `tablemq serve` can be told, with its environment variable and default (see README). */
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
  schemaRefreshMs: number;
  dbPoolSize: number;
  /** How long shutdown waits for in-flight work before it closes anyway. */
  shutdownTimeoutMs: number;
  /** WebSocket ping period; a peer that misses a pong for this long is dropped. */
  pingIntervalMs: number;
  /** Options for tables created without them. */
  tableDefaults: Partial<TableOptions>;
}

export const DEFAULT_CONFIG: Readonly<ServerConfig> = Object.freeze({
  databaseUrl: "mysql://root@127.0.0.1:3306/test",
  host: "127.0.0.1",
  port: 8080,
  logLevel: "info",
  bodyLimitBytes: 8 * 1024 * 1024,
  maxBatch: 1000,
  maxPayloadBytes: 256 * 1024,
  maxSubscribersPerTable: 1000,
  defaultMaxInFlight: 100,
  maxMaxInFlight: 10_000,
  postponeConcurrency: 4,
  schemaRefreshMs: 10_000,
  dbPoolSize: 10,
  shutdownTimeoutMs: 10_000,
  pingIntervalMs: 30_000,
  tableDefaults: {},
});

type Kind = "string" | "int" | "level" | "json-options";

/** Each setting: its config key, environment variable, CLI flag and kind. */
export const SETTINGS: ReadonlyArray<{ key: keyof ServerConfig; env: string; flag: string; kind: Kind; min?: number; help: string }> = [
  { key: "databaseUrl", env: "TABLEMQ_DATABASE_URL", flag: "--database-url", kind: "string", help: "mysql://user:pass@host:port/db" },
  { key: "host", env: "TABLEMQ_HOST", flag: "--host", kind: "string", help: "address to listen on" },
  { key: "port", env: "TABLEMQ_PORT", flag: "--port", kind: "int", min: 0, help: "port to listen on (0 = any free port)" },
  { key: "logLevel", env: "TABLEMQ_LOG_LEVEL", flag: "--log-level", kind: "level", help: "fatal|error|warn|info|debug|trace|silent" },
  { key: "bodyLimitBytes", env: "TABLEMQ_BODY_LIMIT_BYTES", flag: "--body-limit-bytes", kind: "int", min: 1024, help: "largest request body" },
  { key: "maxBatch", env: "TABLEMQ_MAX_BATCH", flag: "--max-batch", kind: "int", min: 1, help: "most messages or ids per request" },
  { key: "maxPayloadBytes", env: "TABLEMQ_MAX_PAYLOAD_BYTES", flag: "--max-payload-bytes", kind: "int", min: 16, help: "largest payload (JSON bytes)" },
  { key: "maxSubscribersPerTable", env: "TABLEMQ_MAX_SUBSCRIBERS_PER_TABLE", flag: "--max-subscribers-per-table", kind: "int", min: 1, help: "subscribers per table" },
  { key: "defaultMaxInFlight", env: "TABLEMQ_DEFAULT_MAX_IN_FLIGHT", flag: "--default-max-in-flight", kind: "int", min: 1, help: "unacked messages per subscriber by default" },
  { key: "maxMaxInFlight", env: "TABLEMQ_MAX_MAX_IN_FLIGHT", flag: "--max-max-in-flight", kind: "int", min: 1, help: "largest maxInFlight a subscriber may ask for" },
  { key: "postponeConcurrency", env: "TABLEMQ_POSTPONE_CONCURRENCY", flag: "--postpone-concurrency", kind: "int", min: 1, help: "concurrent post-send postpones" },
  { key: "schemaRefreshMs", env: "TABLEMQ_SCHEMA_REFRESH_MS", flag: "--schema-refresh-ms", kind: "int", min: 100, help: "how often to look for table changes" },
  { key: "dbPoolSize", env: "TABLEMQ_DB_POOL_SIZE", flag: "--db-pool-size", kind: "int", min: 1, help: "database connections" },
  { key: "shutdownTimeoutMs", env: "TABLEMQ_SHUTDOWN_TIMEOUT_MS", flag: "--shutdown-timeout-ms", kind: "int", min: 0, help: "graceful shutdown deadline" },
  { key: "pingIntervalMs", env: "TABLEMQ_PING_INTERVAL_MS", flag: "--ping-interval-ms", kind: "int", min: 100, help: "WebSocket ping period" },
  { key: "tableDefaults", env: "TABLEMQ_TABLE_DEFAULTS", flag: "--table-defaults", kind: "json-options", help: 'JSON, e.g. {"ackWaitMs":10000}' },
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
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof ServerConfig, unknown>> = {}): ServerConfig {
  const config: ServerConfig = { ...DEFAULT_CONFIG, tableDefaults: {} };
  const target = config as unknown as Record<string, unknown>;
  for (const s of SETTINGS) {
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== "") target[s.key] = parse(s, fromEnv, s.env);
    const fromFlag = overrides[s.key];
    if (fromFlag !== undefined) target[s.key] = typeof fromFlag === "string" ? parse(s, fromFlag, s.flag) : fromFlag;
  }
  if (config.defaultMaxInFlight > config.maxMaxInFlight) {
    throw new ConfigError(`TABLEMQ_DEFAULT_MAX_IN_FLIGHT (${config.defaultMaxInFlight}) must not exceed TABLEMQ_MAX_MAX_IN_FLIGHT (${config.maxMaxInFlight})`);
  }
  if (!/^mysql:\/\//.test(config.databaseUrl)) throw new ConfigError(`TABLEMQ_DATABASE_URL must start with mysql://, got ${JSON.stringify(redactUrl(config.databaseUrl))}`);
  return config;
}

function parse(s: (typeof SETTINGS)[number], raw: string, name: string): unknown {
  switch (s.kind) {
    case "string":
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
  }
}

/** The URL with its password hidden, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@");
}
