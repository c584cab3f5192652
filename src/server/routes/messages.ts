import { noBodyIsEmpty } from "../body.js";
import type { FastifyInstance } from "fastify";
import type { EnqueueMessage } from "../../engine/engine.js";
import type { ServerContext } from "../context.js";
import { checkBatchSize, checkPayload } from "../../model/enqueue.js";
import { payloadTexts } from "../enqueue-body.js";
import {
  AckBody,
  EnqueueBody,
  type EnqueueAnswer,
  ExtendBody,
  FailBody,
  type ExtendAnswer,
  IdsBody,
  PostponeBody,
  ReleaseBody,
  type ReleaseAnswer,
  TableParams,
  WakeBody,
} from "../../wire.js";
import { checkIds } from "../../model/validate.js";
import { answerOf, idsAndReceipts, runIdOrReceiptOp } from "../id-or-receipt-ops.js";

/**
 * Enqueue, ack, postpone, fail, extend, release and wake. A 2xx is sent only after the database committed the
 * change (wake changes nothing: it starts a poll).
 */
export function messageRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine, metrics, config } = ctx;

  const checkBatch = (field: string, n: number) => checkBatchSize(field, n, config.maxBatch);

  app.post<{ Params: TableParams; Body: EnqueueBody }>(
    "/v1/tables/:table/messages",
    { schema: { params: TableParams, body: EnqueueBody } },
    async (req, reply) => {
      const started = process.hrtime.bigint();
      const { table } = req.params;
      checkBatch("messages", req.body.messages.length);
      // Each payload as the producer wrote it: stored and delivered byte for byte (payload.ts).
      const texts = payloadTexts(req.jsonText ?? "");
      const messages: EnqueueMessage[] = req.body.messages.map((m, i) => {
        const payload = checkPayload(i, texts[i], config.maxPayloadBytes);
        return { id: m.id, priority: m.priority, delayMs: m.delayMs, deliverAt: m.deliverAt, payload };
      });
      const result = await (await engine.table(table)).enqueue(messages);
      metrics.enqueueSeconds.observe({ table }, Number(process.hrtime.bigint() - started) / 1e9);
      metrics.batchSize.observe({ table, kind: "enqueue" }, messages.length);
      const answer: EnqueueAnswer = result.duplicates.length > 0 ? result : { ids: result.ids };
      return reply.code(201).send(answer);
    },
  );

  // Ack, postpone and fail: the same request shape (ids and/or receipts) and answer, with their own count key.
  for (const [op, body] of [
    ["ack", AckBody],
    ["postpone", PostponeBody],
    ["fail", FailBody],
  ] as const) {
    app.post<{ Params: TableParams; Body: IdsBody }>(`/v1/tables/:table/${op}`, { schema: { params: TableParams, body } }, async (req) => {
      const size = idsAndReceipts(req.body);
      checkBatch("ids and receipts", size);
      const result = await runIdOrReceiptOp(await engine.table(req.params.table), op, req.body);
      metrics.batchSize.observe({ table: req.params.table, kind: op }, size);
      return answerOf(op, result);
    });
  }

  app.post<{ Params: TableParams; Body: ExtendBody }>(
    "/v1/tables/:table/extend",
    { schema: { params: TableParams, body: ExtendBody } },
    async (req) => {
      checkBatch("receipts", req.body.receipts.length);
      const { changed, stale, unchanged } = await (await engine.table(req.params.table)).extend(req.body.receipts, req.body.byMs);
      return { extended: changed, stale, ...(unchanged?.length ? { unchanged } : {}) } satisfies ExtendAnswer;
    },
  );

  app.post<{ Params: TableParams; Body: ReleaseBody }>(
    "/v1/tables/:table/release",
    { schema: { params: TableParams, body: ReleaseBody } },
    async (req) => {
      checkBatch("receipts", req.body.receipts.length);
      const { changed, stale } = await (await engine.table(req.params.table)).releaseReceipts(req.body.receipts);
      metrics.batchSize.observe({ table: req.params.table, kind: "release" }, req.body.receipts.length);
      return { released: changed, stale } satisfies ReleaseAnswer;
    },
  );

  // Rows another writer committed (the application's own transaction, another node) are found by the next
  // poll; a writer that cannot wait for pollIntervalMs says so here. Nothing to report: 204, no body.
  // Delayed rows come with their due times, and ids acked or postponed there with `forget` (WakeBody).
  app.post<{ Params: TableParams; Body: WakeBody }>(
    "/v1/tables/:table/wake",
    { schema: { params: TableParams, body: WakeBody }, preValidation: noBodyIsEmpty },
    async (req, reply) => {
      const forget = req.body.forget;
      // The schema checks each id's digits; the 64-bit range is checked here, as for acks.
      if (forget !== undefined && forget.length > 0) checkIds(forget, "forget");
      (await engine.table(req.params.table)).wake(req.body);
      return reply.code(204).send();
    },
  );
}
