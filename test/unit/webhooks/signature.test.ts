import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sign, verify } from "../../../src/webhooks/signature.js";

const BODY = '{"table":"orders","messages":[{"id":"1","payload":{"é":1}}]}';

describe("webhook signature", () => {
  it("is sha256=<hex> of the HMAC-SHA256 of the exact body bytes", () => {
    const expected = createHmac("sha256", "s3cret").update(Buffer.from(BODY, "utf8")).digest("hex");
    expect(sign("s3cret", BODY)).toBe(`sha256=${expected}`);
  });

  it("verifies under the right secret and not under another, nor for a changed body", () => {
    const header = sign("s3cret", BODY);
    expect(verify("s3cret", BODY, header)).toBe(true);
    expect(verify("other", BODY, header)).toBe(false);
    expect(verify("s3cret", BODY.replace('"1"', '"2"'), header)).toBe(false);
  });

  it("refuses a missing or malformed header", () => {
    expect(verify("s3cret", BODY, undefined)).toBe(false);
    expect(verify("s3cret", BODY, "")).toBe(false);
    expect(verify("s3cret", BODY, sign("s3cret", BODY).slice(7))).toBe(false); // no sha256= prefix
    expect(verify("s3cret", BODY, "sha256=abc")).toBe(false); // wrong length
  });
});
