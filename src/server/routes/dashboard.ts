import type { FastifyInstance } from "fastify";
import { canSeeTable, scopesOf } from "../auth.js";
import { SERVER_SCOPES, TABLE_SCOPES } from "../config.js";
import type { ServerContext } from "../context.js";
import { describeTables } from "../describe.js";
import { LiveFeed } from "../dashboard/feed.js";
import { HISTORY_STEP_MS, RateHistory } from "../dashboard/history.js";
import { serveUi } from "../dashboard/static.js";
import { type HistoryAnswer, TableParams, type WhoamiAnswer } from "../../wire.js";

/**
 * What the dashboard (served at /ui/ unless TABLEMQ_UI=off) reads besides the table routes: each table's
 * recent rates (GET /v1/tables/{table}/history), a live feed (GET /v1/events), and what the token may do
 * (GET /v1/whoami). The rate history is kept whether or not the UI is served.
 */
export async function dashboardRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { engine } = ctx;
  const history = new RateHistory();
  const feed = new LiveFeed({
    history,
    describeAll: () => describeTables(ctx, engine.tableNames()),
    now: ctx.clock,
    log: app.log,
  });
  const step = () => {
    history.sample(ctx.clock(), engine.counters());
    feed.tick();
  };
  step();
  const timer = setInterval(step, HISTORY_STEP_MS);
  timer.unref();
  app.addHook("preClose", async () => {
    clearInterval(timer);
    feed.close();
  });

  app.get<{ Params: TableParams }>("/v1/tables/:table/history", { schema: { params: TableParams } }, async (req) => {
    await engine.table(req.params.table); // 404 for a table that is not a message table
    return { table: req.params.table, stepMs: HISTORY_STEP_MS, ...history.of(req.params.table) } satisfies HistoryAnswer;
  });

  app.get("/v1/events", async (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    res.write(": tablemq live feed\n\n");
    const remove = feed.add({
      canSee: (table) => canSeeTable(req, table),
      send: (event, data) => {
        res.write(`event: ${event}\ndata: ${data}\n\n`);
        return res.writableLength;
      },
      end: () => res.end(),
    });
    res.on("close", remove);
  });

  app.get("/v1/whoami", async (req) => {
    const scopes = scopesOf(req);
    return {
      authentication: scopes !== undefined,
      scopes: scopes ?? { "*": [...TABLE_SCOPES, ...SERVER_SCOPES] },
      ui: ctx.config.ui === "on",
    } satisfies WhoamiAnswer;
  });

  if (ctx.config.ui === "on") await serveUi(app);
}
