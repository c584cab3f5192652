import type { FastifyInstance } from "fastify";
import type { EnqueueMessage } from "../../engine/engine.js";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";
import { ackBody, type EnqueueBody, enqueueBody, type ExtendBody, extendBody, type IdsBody, postponeBody, tableParams } from "../schemas.js";
import { settle, settleSize } from "../settle.js";

type TableParams = { table: string };

/** MariaDB's JSON_VALID (the column's CHECK) refuses documents nested 32 levels deep or more. */
export const MAX_PAYLOAD_DEPTH = 31;

/**
 * True when a parsed JSON value nests arrays/objects deeper than `max`. Recursive but bounded: it returns
 * at depth max + 1, so however deep the value, the stack holds at most max + 1 frames. It allocates
 * nothing, as it runs for every enqueued message.
 */
export function depthOver(value: unknown, max: number, depth = 1): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (depth > max) return true;
  if (Array.isArray(value)) {
    for (const child of value) if (depthOver(child, max, depth + 1)) return true;
  } else {
    for (const key in value) if (depthOver((value as Record<string, unknown>)[key], max, depth + 1)) return true;
  }
  return false;
}

/** Enqueue, ack, postpone and extend. A 2xx is sent only after the database committed the change. */
export function messageRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine, metrics, config } = ctx;

  const checkBatch = (field: string, n: number) => {
    if (n > config.maxBatch) throw new ApiError(413, "payload_too_large", `${field}: at most ${config.maxBatch} per request, got ${n}`);
  };

  app.post<{ Params: TableParams; Body: EnqueueBody }>(
    "/v1/tables/:table/messages",
    { schema: { params: tableParams, body: enqueueBody } },
    async (req, reply) => {
      const started = process.hrtime.bigint();
      const { table } = req.params;
      checkBatch("messages", req.body.messages.length);
      const messages: EnqueueMessage[] = req.body.messages.map((m, i) => {
        if (depthOver(m.payload, MAX_PAYLOAD_DEPTH)) {
          throw new ApiError(400, "validation_failed", `messages[${i}].payload: nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
        }
        const payload = JSON.stringify(m.payload);
        // A UTF-16 code unit is at most 3 bytes of UTF-8: most payloads are under the limit without counting.
        if (payload.length * 3 > config.maxPayloadBytes && Buffer.byteLength(payload) > config.maxPayloadBytes) {
          throw new ApiError(413, "payload_too_large", `messages[${i}].payload: larger than ${config.maxPayloadBytes} bytes`);
        }
        return { id: m.id, priority: m.priority, delayMs: m.delayMs, deliverAt: m.deliverAt, payload };
      });
      const result = await engine.enqueue(table, messages);
      metrics.enqueueSeconds.observe({ table }, Number(process.hrtime.bigint() - started) / 1e9);
      metrics.batchSize.observe({ table, kind: "enqueue" }, messages.length);
      return reply.code(201).send(result.duplicates.length > 0 ? result : { ids: result.ids });
    },
  );

  // Ack and postpone: the same request shape (ids and/or receipts) and answer, with their own count key.
  for (const [kind, body, counted] of [
    ["ack", ackBody, "acked"],
    ["postpone", postponeBody, "postponed"],
  ] as const) {
    app.post<{ Params: TableParams; Body: IdsBody }>(`/v1/tables/:table/${kind}`, { schema: { params: tableParams, body } }, async (req) => {
      const size = settleSize(req.body);
      checkBatch("ids and receipts", size);
      const { count, stale } = await settle(engine, req.params.table, kind, req.body);
      metrics.batchSize.observe({ table: req.params.table, kind }, size);
      return stale ? { [counted]: count, stale } : { [counted]: count };
    });
  }

  app.post<{ Params: TableParams; Body: ExtendBody }>(
    "/v1/tables/:table/extend",
    { schema: { params: tableParams, body: extendBody } },
    async (req) => {
      checkBatch("receipts", req.body.receipts.length);
      const { changed, stale } = await engine.extend(req.params.table, req.body.receipts, req.body.byMs);
      return { extended: changed, stale };
    },
  );
}
