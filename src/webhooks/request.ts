/** The POST a webhook batch becomes: its body, and the gist of a failed attempt. */
import { deliveredText } from "../receipts.js";
import type { MessageRow } from "../model/messages.js";
import type { WebhookTarget } from "./types.js";

/**
 * The POST body. Messages have the WebSocket frames' shape (the receipt lets a target that handles a
 * message elsewhere extend its lease); payloads are raw JSON text from the table, spliced in unparsed.
 * `sentAt` is covered by the signature, so a target can refuse stale replays.
 */
export function requestBody(t: WebhookTarget, batch: { rows: MessageRow[]; delivery: string; attempts: number }, sentAt: number): string {
  const items = batch.rows.map(deliveredText);
  return (
    `{"table":${JSON.stringify(t.table)},"webhook":${JSON.stringify(t.name)},"delivery":${JSON.stringify(batch.delivery)},` +
    `"attempt":${batch.attempts},"sentAt":${Math.floor(sentAt)},"messages":[${items.join(",")}]}`
  );
}

/** A network error's gist: fetch says "fetch failed" and hides the reason (ECONNREFUSED...) in `cause`. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: string }).code;
    return code ? `${err.message} (${code})` : `${err.message} (${cause.message})`;
  }
  return err.message;
}
