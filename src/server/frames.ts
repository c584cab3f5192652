/**
 * A subscriber's frames, validated by the same schemas as the HTTP bodies (wire.ts), compiled by Ajv with
 * the options the routes use; the error names the field as a route's 400 does.
 */
import { ValidationError } from "../model/validate.js";
import { type ClientFrame, ClientFrames } from "../wire.js";
import { schemaErrorMessage, validatorOf } from "../wire-check.js";
import { idsAndReceipts } from "./id-or-receipt-ops.js";
import { checkIdsAndReceipts } from "../model/validate.js";

const validators = Object.fromEntries(Object.entries(ClientFrames).map(([type, schema]) => [type, validatorOf(schema)])) as Record<
  ClientFrame["type"],
  ReturnType<typeof validatorOf>
>;

const FRAME_TYPES = Object.keys(ClientFrames)
  .map((t) => JSON.stringify(t))
  .join(", ");

/** A client frame, or the error to answer it with (which counts as a bad frame). */
export function parseFrame(text: string, maxBatch: number): ClientFrame | { error: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { error: "frame: malformed JSON" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { error: "frame: must be a JSON object" };
  const type = (v as { type?: unknown }).type;
  if (typeof type !== "string" || !Object.hasOwn(validators, type)) {
    return { error: `type: must be one of ${FRAME_TYPES}, got ${JSON.stringify(type) ?? "nothing"}` };
  }
  const validate = validators[type as ClientFrame["type"]];
  if (!validate(v)) return { error: schemaErrorMessage(validate.errors![0]!, "frame") };
  const frame = v as ClientFrame;
  if (frame.type === "pause") return frame;
  try {
    checkIdsAndReceipts(frame); // what a pattern cannot say, as for an HTTP body
  } catch (err) {
    if (err instanceof ValidationError) return { error: err.message };
    throw err;
  }
  if (idsAndReceipts(frame) > maxBatch) return { error: `ids and receipts: at most ${maxBatch} per frame, got ${idsAndReceipts(frame)}` };
  return frame;
}
