import { maxHeaderSize, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { OutcomeUnknownError, TablemqError, UnavailableError } from "../errors.js";
import { OptionsError } from "../options.js";
import type { ErrorAnswer } from "../wire.js";
import { schemaErrorMessage } from "../wire-check.js";

/**
 * An error that becomes the API's error body: `{"error": {"code", "message"}}` with `status`, plus `extra`
 * fields beside `error` (the ids of an `outcome_unknown`).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The error body (wire.ts ErrorAnswer): `ids` with `outcome_unknown`, the ids of the messages concerned. */
export type ErrorBody = ErrorAnswer;

/**
 * Errors the database answered that mean "busy or going away, try again": the statement was refused or
 * rolled back, so nothing was written. (Connection failures come labelled from the store: see
 * src/store/mysql/guarded-pool.ts.)
 */
const UNAVAILABLE_CODES = new Set(["ER_CON_COUNT_ERROR", "ER_SERVER_SHUTDOWN", "ER_LOCK_WAIT_TIMEOUT", "ER_LOCK_DEADLOCK"]);

/** Not the API's 503: that one promises nothing was written, and a client may read only the status. */
const OUTCOME_UNKNOWN_STATUS = 504;

function outcomeUnknown(message: string, ids: readonly string[]): ApiError {
  const advice = ids.length > 0 ? "send the same request again with these ids (it is idempotent)" : "send the same request again";
  const text = `${message}: the change may or may not be committed; ${advice}`;
  return new ApiError(OUTCOME_UNKNOWN_STATUS, "outcome_unknown", text, {}, ids.length > 0 ? { ids: [...ids] } : {});
}

const CORE_STATUS: Record<string, number> = {
  table_not_found: 404,
  message_not_found: 404,
  webhook_not_found: 404,
  validation_failed: 400,
  payload_too_large: 413,
  unavailable: 503,
  conflict: 409,
  overloaded: 429,
};

/** Maps anything thrown by a route to a status and error body. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof OutcomeUnknownError) return outcomeUnknown(err.message, err.ids);
  if (err instanceof UnavailableError) return new ApiError(503, "unavailable", `${err.message}; nothing was written`);
  if (err instanceof TablemqError) {
    const headers: Record<string, string> = err.code === "overloaded" ? { "retry-after": "1" } : {};
    return new ApiError(CORE_STATUS[err.code] ?? 500, err.code, err.message, headers);
  }
  if (err instanceof OptionsError) return new ApiError(400, "validation_failed", err.message);
  const e = err as Partial<FastifyError> & { code?: string; fatal?: boolean; errno?: number };
  if (e.validation) {
    return new ApiError(400, "validation_failed", validationMessage(e as FastifyError));
  }
  switch (e.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiError(413, "payload_too_large", e.message ?? "request body is too large");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ApiError(400, "bad_request", "content-type must be application/json");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new ApiError(400, "bad_request", "body: the JSON body is empty");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new ApiError(400, "bad_request", "body: malformed JSON");
    case "FST_ERR_BAD_URL":
      return new ApiError(400, "bad_request", "url: malformed (bad percent-encoding)");
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new ApiError(400, "validation_failed", "params.table is too long");
  }
  if (err instanceof SyntaxError || e.statusCode === 400) {
    return new ApiError(400, "bad_request", `body: malformed JSON (${e.message ?? "parse error"})`);
  }
  if (e.code && UNAVAILABLE_CODES.has(e.code) && e.fatal !== true) {
    return new ApiError(503, "unavailable", "the database is unavailable; nothing was written");
  }
  // A connection failure nobody labelled: whether the statement ran is not known.
  if (e.fatal === true) return outcomeUnknown("the database connection failed", []);
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode, "bad_request", e.message ?? "bad request");
  }
  return new ApiError(500, "internal", "internal error");
}

/** "body/messages/0/priority must be <= 255" → "messages[0].priority must be <= 255". */
function validationMessage(err: FastifyError): string {
  const first = err.validation?.[0];
  if (!first) return err.message;
  return schemaErrorMessage(first, err.validationContext ?? "body");
}

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
  return reply.code(err.status).send({ error: { code: err.code, message: err.message }, ...err.extra } satisfies ErrorBody);
}

export function errorHandler(this: unknown, err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const apiError = toApiError(err);
  if (apiError.status >= 500) request.log.error({ err }, "request failed");
  else request.log.debug({ err: apiError.message }, "request rejected");
  return sendError(reply, apiError);
}

/**
 * Errors Node's HTTP parser raises before a request exists (fastify's clientErrorHandler): answered in
 * the API's error body too, then the connection is closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const [status, code, message] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, "headers_too_large", `headers: larger than the server accepts (${maxHeaderSize} bytes in all)`]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "request_timeout", "the request was not received in time"]
        : [400, "bad_request", `malformed HTTP request (${err.code ?? "parse error"})`];
  const body = JSON.stringify({ error: { code, message } } satisfies ErrorBody);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(reply, new ApiError(404, "not_found", `no route ${request.method} ${request.url.split("?")[0]}`));
}
