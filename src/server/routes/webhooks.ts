import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";
import { TableParams, WebhookBody, type WebhookDeletedAnswer, type WebhookListAnswer, WebhookParams } from "../../wire.js";

/**
 * A table's webhook subscribers (admin scope): PUT creates or replaces one (a full replace: a secret left
 * out is removed), GET lists them or shows one, DELETE removes one. Secrets are never returned.
 */
export function webhookRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { webhooks } = ctx;
  /** The other nodes read the table's webhooks again now, not at their next round. */
  const tellPeers = (table: string) => ctx.cluster?.publish({ kind: "webhooks", table });

  app.put<{ Params: WebhookParams; Body: WebhookBody }>(
    "/v1/tables/:table/webhooks/:name",
    { schema: { params: WebhookParams, body: WebhookBody } },
    async (req, reply) => {
      checkUrl(req.body.url);
      const { table, name } = req.params;
      const { created, webhook } = await webhooks.put(table, name, req.body);
      tellPeers(table);
      return reply.code(created ? 201 : 200).send(webhook);
    },
  );

  app.get<{ Params: TableParams }>(
    "/v1/tables/:table/webhooks",
    { schema: { params: TableParams } },
    async (req) => ({ webhooks: await webhooks.list(req.params.table) }) satisfies WebhookListAnswer,
  );

  app.get<{ Params: WebhookParams }>("/v1/tables/:table/webhooks/:name", { schema: { params: WebhookParams } }, async (req) =>
    webhooks.get(req.params.table, req.params.name),
  );

  app.delete<{ Params: WebhookParams }>("/v1/tables/:table/webhooks/:name", { schema: { params: WebhookParams } }, async (req) => {
    await webhooks.remove(req.params.table, req.params.name);
    tellPeers(req.params.table);
    return { table: req.params.table, name: req.params.name, deleted: true } satisfies WebhookDeletedAnswer;
  });
}

/**
 * An absolute http: or https: URL with a host, no control characters (CR, LF, tab) and no user name or password (fetch refuses credentials in a
 * URL, and they would be shown by GET; sign with `secret` instead).
 */
export function checkUrl(url: string): void {
  const bad = (why: string) => new ApiError(400, "validation_failed", `url: ${why}`);
  // WHATWG URL parsing drops tabs and line breaks silently: the stored text would not be the URL used.
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  const control = /[\u0000-\u001f\u007f]/.exec(url);
  if (control) throw bad(`must not contain control characters (found ${JSON.stringify(control[0])} at ${control.index})`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad("must be an absolute http or https URL");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw bad(`must use http or https, not ${JSON.stringify(u.protocol.replace(/:$/, ""))}`);
  if (u.hostname === "") throw bad("must name a host");
  if (u.username !== "" || u.password !== "") throw bad("must not contain a user name or password (use secret to sign requests)");
}
