import type {} from "@fastify/websocket"; // route option types for `websocket: true`
import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";
import { SubscribeQuery, TableParams } from "../../wire.js";
import { SocketSubscriber } from "../subscriber.js";

/**
 * GET /v1/tables/{table}/subscribe, upgraded to a WebSocket. Everything that can be refused (bad params,
 * unknown table, too many subscribers, shutdown) is refused before the upgrade, as a plain HTTP error.
 */
export function subscribeRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine, config } = ctx;

  app.route<{ Params: TableParams; Querystring: SubscribeQuery }>({
    method: "GET",
    url: "/v1/tables/:table/subscribe",
    schema: { params: TableParams, querystring: SubscribeQuery },
    preHandler: async (req) => {
      const handle = await engine.table(req.params.table); // 404 for an unknown table
      const wanted = req.query.maxInFlight === undefined ? config.defaultMaxInFlight : Number(req.query.maxInFlight);
      if (wanted > config.maxMaxInFlight) {
        throw new ApiError(400, "validation_failed", `querystring.maxInFlight must be <= ${config.maxMaxInFlight}`);
      }
      if (handle.snapshot().receivers >= config.maxSubscribersPerTable) {
        throw new ApiError(429, "overloaded", `table ${req.params.table} has ${config.maxSubscribersPerTable} subscribers already`, {
          "retry-after": "5",
        });
      }
    },
    // A plain GET (no upgrade) gets the API's error body, not an empty 404.
    handler: async () => {
      throw new ApiError(400, "bad_request", "this endpoint needs a WebSocket upgrade (GET with upgrade: websocket)");
    },
    wsHandler: async (socket, req) => {
      const { table } = req.params;
      const maxInFlight = req.query.maxInFlight === undefined ? config.defaultMaxInFlight : Number(req.query.maxInFlight);
      const subscriber = new SocketSubscriber(socket, {
        table,
        maxInFlight,
        maxBatch: config.maxBatch,
        pingIntervalMs: config.pingIntervalMs,
        engine,
        metrics: ctx.metrics,
        log: req.log,
        clock: ctx.clock,
      });
      try {
        const { options } = await engine.table(table);
        await subscriber.start(options.batchSize, options.ackWaitMs);
      } catch (err) {
        req.log.warn({ err, table }, "subscribe failed after upgrade");
        subscriber.onClose("table unavailable");
      }
    },
  });
}
