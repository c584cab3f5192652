/**
 * Request bodies: JSON in UTF-8, uncompressed. Every refusal names what is wrong in the API's error body.
 */
import { isUtf8 } from "node:buffer";
import type { FastifyInstance, FastifyRequest } from "fastify";
import secureJson from "secure-json-parse";
import { ApiError } from "./errors.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The JSON body's text, as sent (the enqueue route takes payloads from it: enqueue-body.ts). */
    jsonText?: string;
  }
}

/** Routes whose bodies carry message payloads: any JSON at all may be inside them, `__proto__` keys too. */
const PAYLOAD_ROUTES = new Set(["/v1/tables/:table/messages"]);

export function installJsonBodies(app: FastifyInstance): void {
  app.removeContentTypeParser("text/plain"); // JSON only: anything else is a 400 naming the content type
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (req, body, done) => {
    try {
      done(null, parseJsonBody(req, body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // A compressed body would reach the parser as bytes that are not JSON: refuse it for what it is.
  app.addHook("preParsing", async (req, _reply, payload) => {
    const encoding = req.headers["content-encoding"];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== "identity") {
      throw new ApiError(
        415,
        "unsupported_encoding",
        `content-encoding ${JSON.stringify(encoding)} is not supported: send the body uncompressed`,
      );
    }
    return payload;
  });
}

function parseJsonBody(req: FastifyRequest, bytes: Buffer): unknown {
  // Invalid bytes are refused, not silently replaced by U+FFFD.
  if (!isUtf8(bytes)) throw new ApiError(400, "bad_request", "body: not valid UTF-8");
  const text = bytes.toString("utf8");
  // No body, whatever the content type says (curl -X DELETE -H 'content-type: application/json'): as if none
  // was sent. A route that needs one says so through its schema ("body: must be object").
  if (text.trim().length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, "bad_request", `body: malformed JSON (${(err as Error).message})`);
  }
  if (PAYLOAD_ROUTES.has(req.routeOptions.url ?? "")) {
    // Payloads are kept as text and never merged into objects; the schema refuses these keys elsewhere.
    req.jsonText = text;
    return value;
  }
  if (typeof value === "object" && value !== null && (text.includes("__proto__") || text.includes("constructor"))) {
    try {
      secureJson.scan(value, { protoAction: "error", constructorAction: "error" });
    } catch {
      throw new ApiError(
        400,
        "bad_request",
        'body: keys "__proto__" and "constructor.prototype" are refused here (they could change object prototypes)',
      );
    }
  }
  return value;
}

/**
 * A route's preValidation for a body that may be left out: no body at all is `{}` (every field optional),
 * so the schema checks an object. A JSON null is a body, and the schema refuses it.
 */
export async function noBodyIsEmpty(req: FastifyRequest): Promise<void> {
  if (req.body === undefined) req.body = {};
}
