/**
 * Checking a value against a wire schema (wire.ts) outside fastify's routes, with the same validator and
 * options the routes use (app.ts) and the same error text: a subscriber's frames, and `tablemq/sql`'s
 * requests, which must fail as the HTTP API would.
 */
import { Ajv, type ValidateFunction } from "ajv";
import type { TSchema } from "typebox";
import { ValidationError } from "./model/validate.js";

/** As the app's own (app.ts): no coercion, no silent removal of unknown fields, the first error. */
const ajv = new Ajv({ coerceTypes: false, removeAdditional: false, allErrors: false });
const compiled = new WeakMap<TSchema, ValidateFunction>();

/** The schema's validator, compiled once. */
export function validatorOf(schema: TSchema): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) compiled.set(schema, (validate = ajv.compile(schema)));
  return validate;
}

/** Throws the ValidationError a route's 400 would give when `value` does not match `schema` (`where`: "body", "frame"). */
export function checkWire(schema: TSchema, value: unknown, where: string): void {
  const validate = validatorOf(schema);
  if (!validate(value)) throw ValidationError.saying(fieldOf(validate.errors![0]!), schemaErrorMessage(validate.errors![0]!, where));
}

function fieldOf(error: SchemaError): string {
  return error.instancePath.replace(/^\//, "").replaceAll("/", ".") || "body";
}

/** What a schema validator (Ajv) reports of one error. */
export interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown> | object;
  message?: string;
}

/**
 * One schema error as a message that names the field: `messages[0].priority must be <= 255`, `body: unknown
 * field "colour"`. `where` is the part of the request ("body", "querystring", "params") or "frame"; a body's
 * or a frame's fields are named without it.
 */
export function schemaErrorMessage(first: SchemaError, where: string): string {
  const path = first.instancePath
    .split("/")
    .filter(Boolean)
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join("")
    .replace(/^\./, "");
  const params = first.params as Record<string, unknown>;
  let field = path;
  if (first.keyword === "required") field = [path, String(params.missingProperty)].filter(Boolean).join(".");
  if (first.keyword === "additionalProperties") {
    return `${where}${field ? "." + field : ""}: unknown field ${JSON.stringify(params.additionalProperty)}`;
  }
  const bare = where === "body" || where === "frame";
  const subject = field ? `${bare ? "" : where + "."}${field}` : where;
  return first.keyword === "required" ? `${subject} is required` : `${subject} ${first.message ?? "is invalid"}`;
}
