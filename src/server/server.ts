import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { type DestinationStream, pino, type Logger as PinoLogger } from "pino";
import type { BusEvent } from "../cluster/bus-events.js";
import { systemClock } from "../clock.js";
import { Engine } from "../engine/engine.js";
import { ClusterNode } from "../cluster/node.js";
import type { NodeStore, WebhookLeaseStore } from "../store/cluster-types.js";
import { MysqlClusterStore } from "../store/mysql/cluster.js";
import { parseMysqlUrl } from "../store/mysql/connect.js";
import { MysqlStore } from "../store/mysql/store.js";
import { openStore } from "../store/open.js";
import { SqliteStore } from "../store/sqlite/store.js";
import { SqliteThreadStore } from "../store/sqlite/thread-store.js";
import type { StatementTimes } from "../store/sqlite/timing.js";
import { VERSION } from "../version.js";
import type { MessageStore, WebhookStore } from "../store/types.js";
import { WebhookRegistry } from "../webhooks/registry.js";
import { buildApp } from "./app.js";
import type { ServerConfig } from "./config.js";
import type { Logger } from "../logger.js";
import { ConnectionTracker } from "./connections.js";
import type { ServerContext } from "./context.js";
import { Metrics } from "./metrics.js";

export interface RunningServer {
  /** http://host:port */
  url: string;
  port: number;
  engine: Engine;
  app: FastifyInstance;
  /** Graceful shutdown; idempotent. */
  close(): Promise<void>;
}

export interface ServerDeps {
  /** A store to use instead of one made from config.databaseUrl (the caller then closes it); it keeps the webhooks too. */
  store?: MessageStore & WebhookStore;
  /**
   * Where the nodes on the store's database register and lease webhooks; by default the store's own database
   * when it is a MysqlStore. Without one, the server runs alone: no membership, no bus, every webhook driven here.
   */
  clusterStore?: NodeStore & WebhookLeaseStore;
  logger?: PinoLogger;
}

/**
 * The server's logger. fastify's request serializer logs method, URL, host and address, not headers; the
 * redaction is a second guard so that a bearer token (authorization, or a WebSocket `bearer.` subprotocol)
 * is never written to the log even if a request's headers are.
 */
export function createLogger(level: ServerConfig["logLevel"], destination?: DestinationStream): PinoLogger {
  const paths = ["authorization", '["sec-websocket-protocol"]', "cookie"].flatMap((h) => {
    const key = h.startsWith("[") ? h : `.${h}`;
    return [`req.headers${key}`, `headers${key}`, `request.headers${key}`];
  });
  const options = { level, redact: { paths, censor: "[redacted]" } };
  return destination ? pino(options, destination) : pino(options);
}

/** The store TABLEMQ_DATABASE_URL names; the embedded one says where it is and how to move to MySQL. */
async function openConfiguredStore(config: ServerConfig, logger: PinoLogger): Promise<MessageStore & WebhookStore> {
  const opened = await openStore(config.databaseUrl, {
    mysql: { connectionLimit: config.dbPoolSize, statementTimeoutMs: config.dbStatementTimeoutMs },
    sqliteThread: config.sqliteThread,
  });
  if (opened.kind === "sqlite") {
    logger.info(
      { path: opened.path, thread: config.sqliteThread },
      `embedded SQLite store at ${opened.path} (one node); for production set TABLEMQ_DATABASE_URL=mysql://user:pass@host:3306/db`,
    );
  }
  return opened.store;
}

/** The embedded store's statement times, for the metrics; none for MySQL. */
function statementTimesOf(store: MessageStore): (() => Promise<StatementTimes>) | undefined {
  return store instanceof SqliteStore || store instanceof SqliteThreadStore ? () => store.takeStatementTimes() : undefined;
}

/** Opens the engine on the database and listens. */
export async function startServer(config: ServerConfig, deps: ServerDeps = {}): Promise<RunningServer> {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const ownsStore = !deps.store;
  const store = deps.store ?? (await openConfiguredStore(config, logger));
  const clusterStore = deps.clusterStore ?? (store instanceof MysqlStore ? new MysqlClusterStore(store.db) : undefined);
  let webhooks: WebhookRegistry | undefined; // eslint-disable-line prefer-const -- read by a callback made before it
  const cluster = clusterStore
    ? new ClusterNode({
        store: clusterStore,
        clock: systemClock,
        log: logger,
        version: VERSION,
        ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
        database: parseMysqlUrl(config.databaseUrl).database,
        peerPollMs: config.peerPollMs,
        heartbeatMs: config.nodeHeartbeatMs,
        onWebhooksChanged: () => void webhooks?.reloadConfigs().catch(() => {}),
      })
    : undefined;
  let idNode: number | undefined;
  try {
    idNode = await cluster?.start();
  } catch (err) {
    if (ownsStore) await store.close();
    throw err;
  }
  const engine = new Engine({
    store,
    log: logger,
    ...(idNode === undefined ? {} : { idNode }),
    ...(cluster ? { signal: (event: BusEvent) => cluster.publish(event) } : {}),
    postponeConcurrency: config.postponeConcurrency,
    cacheMaxBytes: config.cacheMaxBytes,
    enqueueMaxBytes: config.enqueueMaxBytes,
    schemaRefreshMs: config.schemaRefreshMs,
    defaultOptions: config.tableDefaults,
    writeTimeoutMs: config.dbStatementTimeoutMs,
  });
  await engine.open();
  cluster?.attach(engine);
  webhooks = new WebhookRegistry({
    engine,
    store,
    log: logger,
    retry: { minDelayMs: config.webhookRetryMinMs, maxDelayMs: config.webhookRetryMaxMs },
    ...(cluster && clusterStore ? { leases: { store: clusterStore, owner: cluster.id, ttlMs: config.webhookLeaseMs } } : {}),
  });
  await webhooks.open();
  const ctx: ServerContext = {
    config,
    engine,
    store,
    webhooks,
    ...(cluster ? { cluster } : {}),
    metrics: new Metrics(engine, webhooks, cluster, statementTimesOf(store)),
    clock: () => Date.now(),
    startedAt: Date.now(),
    state: { shuttingDown: false },
  };
  let app: FastifyInstance;
  let connections: ConnectionTracker;
  try {
    app = await buildApp(ctx, logger); // throws for a bad token table given as a typed config
    connections = new ConnectionTracker(app.server);
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await webhooks.close();
    await engine.close();
    await cluster?.close();
    if (ownsStore) await store.close();
    throw err;
  }
  const { port } = app.server.address() as AddressInfo;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  logger.info({ url }, "tablemq listening");
  cluster?.setUrl(config.nodeUrl || url);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      ctx.state.shuttingDown = true;
      // Stop accepting; idle connections close now; in-flight requests (their commits) finish and their
      // connections close after the answer; subscribers get 1001 going away.
      connections.closeIdle();
      await withDeadline(app.close(), config.shutdownTimeoutMs, () => logger.warn("shutdown deadline passed; closing anyway"));
      // Webhook POSTs in flight finish (each within its timeout) and are acked; held messages go back to their tables.
      await withDeadline(webhooks.close(), config.shutdownTimeoutMs, () => logger.warn("webhook close deadline passed; closing anyway"));
      await withDeadline(engine.close(), config.shutdownTimeoutMs, () => logger.warn("engine close deadline passed; closing the pool"));
      // Last: the other nodes stop counting on this one (and learn of its queued rows) once it is gone.
      await withDeadline(cluster?.close() ?? Promise.resolve(), config.shutdownTimeoutMs, () =>
        logger.warn("cluster close deadline passed"),
      );
      if (ownsStore) await store.close();
      logger.info("tablemq stopped");
    })());
  return { url, port, engine, app, close };
}

/**
 * SIGTERM/SIGINT: graceful shutdown, then exit 0. A second signal exits at once with 1.
 */
export function installSignalHandlers(server: RunningServer, log: Logger = server.app.log): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.info({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    signalled = true;
    log.info({ signal }, "shutting down");
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

async function withDeadline(work: Promise<unknown>, ms: number, onLate: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      onLate();
      resolve();
    }, ms);
  });
  await Promise.race([work.then(() => undefined), late]);
  clearTimeout(timer);
}
