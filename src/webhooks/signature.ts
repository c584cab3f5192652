/**
 * Webhook request signing: `x-tablemq-signature: sha256=<hex>`, the HMAC-SHA256 of the exact body bytes
 * under the webhook's secret. The body carries `sentAt` (epoch ms), so a receiver that checks the signature
 * can also refuse old replays.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-tablemq-signature";
const PREFIX = "sha256=";

/** The header value for `body` signed with `secret`. */
export function sign(secret: string, body: string | Buffer): string {
  return PREFIX + createHmac("sha256", secret).update(body).digest("hex");
}

/** True when `header` is the signature of `body` under `secret` (constant-time comparison). */
export function verify(secret: string, body: string | Buffer, header: string | undefined | null): boolean {
  if (typeof header !== "string" || !header.startsWith(PREFIX)) return false;
  const given = Buffer.from(header.slice(PREFIX.length), "hex");
  const expected = createHmac("sha256", secret).update(body).digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}
