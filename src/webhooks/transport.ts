/**
 * How a webhook batch goes over the wire: one POST, no redirects followed (a 3xx is a failure like any
 * other non-2xx), cut off by the caller's signal. Injected into the receiver, so unit tests need no network.
 */
export interface WebhookRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  signal: AbortSignal;
}

export interface WebhookResponse {
  status: number;
  /** The start of the response body (at most ERROR_TEXT_CHARS), for the last-error message. */
  text: string;
}

export type Transport = (request: WebhookRequest) => Promise<WebhookResponse>;

/** Bytes of a response body read at most; the rest is discarded (a target cannot make us buffer much). */
const MAX_RESPONSE_BYTES = 64 * 1024;
export const ERROR_TEXT_CHARS = 200;

/** The transport on Node's built-in fetch (undici). */
export const fetchTransport: Transport = async ({ url, body, headers, signal }) => {
  const res = await fetch(url, { method: "POST", body, headers, signal, redirect: "manual" });
  return { status: res.status, text: await readCapped(res) };
};

/** Reads a bounded prefix of the body (so a kept-alive connection is left clean for small bodies). */
async function readCapped(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size < MAX_RESPONSE_BYTES) chunks.push(value);
    size += value.byteLength;
    if (size >= MAX_RESPONSE_BYTES) {
      await reader.cancel().catch(() => {});
      break;
    }
  }
  return Buffer.concat(chunks).toString("utf8", 0, Math.min(size, MAX_RESPONSE_BYTES)).slice(0, ERROR_TEXT_CHARS);
}
