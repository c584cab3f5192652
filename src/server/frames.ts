/**
 * A subscriber's frames, validated by the same schemas as the HTTP bodies (wire.ts), compiled by Ajv with
 * the options the routes use; the error names the field as a route's 400 does.
 */
import { Ajv, type ValidateFunction } from "ajv";
import { isMessageId, MAX_MESSAGE_ID } from "../ids.js";
import { parseReceipt } from "../receipts.js";
import { type ClientFrame, ClientFrames } from "../wire.js";
import { schemaErrorMessage } from "./errors.js";
import { idsAndReceipts } from "./ack-or-postpone.js";

/** As the app's own (app.ts): no coercion, no silent removal of unknown fields, the first error. */
const ajv = new Ajv({ coerceTypes: false, removeAdditional: false, allErrors: false });
const validators = Object.fromEntries(Object.entries(ClientFrames).map(([type, schema]) => [type, ajv.compile(schema)])) as Record<
  ClientFrame["type"],
  ValidateFunction
>;

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
  if (type !== "ack" && type !== "postpone" && type !== "extend") {
    return { error: `type: must be "ack", "postpone" or "extend", got ${JSON.stringify(type) ?? "nothing"}` };
  }
  const validate = validators[type];
  if (!validate(v)) return { error: schemaErrorMessage(validate.errors![0]!, "frame") };
  const frame = v as ClientFrame;
  const ids = "ids" in frame ? frame.ids : undefined;
  if (ids === undefined && frame.receipts === undefined) return { error: "ids: one of ids or receipts is required" };
  if (idsAndReceipts(frame) > maxBatch) return { error: `ids and receipts: at most ${maxBatch} per frame, got ${idsAndReceipts(frame)}` };
  // What a pattern cannot say: a 20-digit id past 2^64-1, a receipt whose parts do not parse.
  const badId = ids?.findIndex((id) => !isMessageId(id)) ?? -1;
  if (badId >= 0) return { error: `ids[${badId}]: must be a decimal id string from 0 to ${MAX_MESSAGE_ID}` };
  const badReceipt = frame.receipts?.findIndex((r) => parseReceipt(r) === undefined) ?? -1;
  if (badReceipt >= 0) return { error: `receipts[${badReceipt}]: must be a receipt from a delivered message` };
  return frame;
}
