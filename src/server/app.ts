import websocket from "@fastify/websocket";
import Fastify, { type FastifyInstance } from "fastify";
import type { Logger as PinoLogger } from "pino";
import type { WebSocket } from "ws";
import { accessHook, Authenticator, selectProtocol } from "./auth.js";
import { installJsonBodies } from "./body.js";
import type { ServerContext } from "./context.js";
import { ApiError, clientErrorHandler, errorHandler, notFoundHandler, sendError, toApiError } from "./errors.js";
import { registerOpenApi } from "./openapi.js";
import { RequestLogs } from "./request-logs.js";
import { PingRing } from "./pings.js";
import { systemClock } from "../clock.js";
import { browseRoutes } from "./routes/browse.js";
import { actionRoutes } from "./routes/actions.js";
import { dashboardRoutes } from "./routes/dashboard.js";
import { deadLetterRoutes } from "./routes/dead-letters.js";
import { messageRoutes } from "./routes/messages.js";
import { limitConnections, rateLimiterFor } from "./rate-limit.js";
import { nodeRoutes } from "./routes/nodes.js";
import { opsRoutes } from "./routes/ops.js";
import { VERSION } from "../version.js";
import { subscribeRoutes } from "./routes/subscribe.js";
import { tableRoutes } from "./routes/tables.js";
import { webhookRoutes } from "./routes/webhooks.js";
import { CLOSE_GOING_AWAY } from "./subscriber.js";

const ALWAYS_OPEN = new Set(["/healthz", "/readyz", "/metrics"]);

/** The fastify application: one port for HTTP and WebSocket, every route validated by JSON schema. */
export async function buildApp(ctx: ServerContext, logger: PinoLogger): Promise<FastifyInstance> {
  const auth = new Authenticator(ctx.config); // throws ConfigError for a bad token table
  const app = Fastify({
    loggerInstance: logger,
    logController: new RequestLogs(),
    bodyLimit: ctx.config.bodyLimitBytes,
    forceCloseConnections: "idle",
    return503OnClosing: true,
    // Strict validation: no type coercion, no silent removal of unknown fields.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // Long table names reach the schema (and get its 400) instead of the router's 414.
    routerOptions: { maxParamLength: 2_048 },
    // Errors the router raises before any route (a malformed URL) get the API's error body too.
    frameworkErrors: (err, _req, reply) => sendError(reply, toApiError(err)),
    // And those Node's HTTP parser raises before there is a request (431, 408, malformed requests).
    clientErrorHandler,
  }) as unknown as FastifyInstance;

  await app.register(websocket, {
    options: { maxPayload: Math.min(ctx.config.bodyLimitBytes, 4 * 1024 * 1024), handleProtocols: selectProtocol },
    preClose(done) {
      const server = app.websocketServer;
      for (const socket of server.clients) socket.close(CLOSE_GOING_AWAY, "server shutting down");
      server.close(() => done());
    },
  });

  // Before every route: swagger collects them as they are added (GET /openapi.json).
  await registerOpenApi(app);

  installJsonBodies(app);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  app.addHook("onRequest", async (req, reply) => {
    if (ctx.state.shuttingDown && !ALWAYS_OPEN.has(req.url.split("?")[0]!)) {
      return sendError(reply, new ApiError(503, "unavailable", "the server is shutting down; nothing was written"));
    }
  });
  // Once shutdown began, every answer closes its connection: a keep-alive connection whose request was
  // still running would otherwise rest open after its answer (keepAliveTimeout, 72 s), holding the close
  // until its deadline (RELIABILITY.md, problem 9). Connections without a request in flight are closed
  // by connections.ts.
  app.addHook("onSend", async (_req, reply) => {
    if (ctx.state.shuttingDown) void reply.header("connection", "close");
  });
  // Authentication, authorization and the rate limit, before the body is read or a socket upgraded.
  const limiter = rateLimiterFor(ctx.config);
  if (auth.enabled || limiter) app.addHook("onRequest", accessHook(auth, limiter, ctx.metrics.registry));
  limitConnections(app.server, ctx.config.maxConnections, ctx.metrics.registry);

  tableRoutes(app, ctx);
  messageRoutes(app, ctx);
  deadLetterRoutes(app, ctx);
  browseRoutes(app, ctx);
  actionRoutes(app, ctx);
  subscribeRoutes(app, ctx);
  webhookRoutes(app, ctx);
  opsRoutes(app, ctx);
  await dashboardRoutes(app, ctx);
  nodeRoutes(app, {
    membership: () => ctx.cluster?.nodes(),
    self: () =>
      ctx.cluster?.self() ?? { id: "this", url: null, version: VERSION, startedAt: ctx.startedAt, heartbeatAt: ctx.clock(), redis: false },
  });

  startHeartbeat(app, ctx.config.pingIntervalMs);
  return app;
}

/** Pings every socket once each interval, spread over it (pings.ts); one that did not answer its previous ping is terminated. */
function startHeartbeat(app: FastifyInstance, intervalMs: number): void {
  const ring = new PingRing(systemClock, intervalMs);
  app.websocketServer.on("connection", (socket: WebSocket) => ring.add(socket));
  app.addHook("onClose", async () => ring.stop());
}
