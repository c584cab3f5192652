import { describe, expect, it } from "vitest";
import { OutcomeUnknownError, OverloadedError, UnavailableError } from "../../../src/errors.js";
import { toApiError } from "../../../src/server/errors.js";

describe("toApiError: database failures", () => {
  it("answers a write that never ran 503 unavailable, saying nothing was written", () => {
    const e = toApiError(new UnavailableError("cannot connect to the database: ECONNREFUSED"));
    expect(e).toMatchObject({ status: 503, code: "unavailable", extra: {} });
    expect(e.message).toMatch(/ECONNREFUSED; nothing was written$/);
  });

  it("answers a write whose outcome is unknown 504 outcome_unknown with its ids, never 503", () => {
    const e = toApiError(new OutcomeUnknownError("the database connection was lost after the statement was sent", ["7", "8"]));
    expect(e).toMatchObject({ status: 504, code: "outcome_unknown", extra: { ids: ["7", "8"] } });
    expect(e.message).toMatch(/again with these ids/);
  });

  it("answers a connection failure that nobody labelled 504, since whether it ran is not known", () => {
    const raw = Object.assign(new Error("Connection lost: The server closed the connection."), {
      code: "PROTOCOL_CONNECTION_LOST",
      fatal: true,
    });
    expect(toApiError(raw)).toMatchObject({ status: 504, code: "outcome_unknown" });
  });

  it("answers a statement the database refused or rolled back 503 unavailable", () => {
    const raw = Object.assign(new Error("Lock wait timeout exceeded"), { code: "ER_LOCK_WAIT_TIMEOUT", errno: 1205 });
    expect(toApiError(raw)).toMatchObject({ status: 503, code: "unavailable" });
  });

  it("answers a full connection queue 429 overloaded with retry-after", () => {
    expect(toApiError(new OverloadedError("too many requests are waiting for the database"))).toMatchObject({
      status: 429,
      code: "overloaded",
      headers: { "retry-after": "1" },
    });
  });
});
