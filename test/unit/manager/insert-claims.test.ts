import { describe, expect, it } from "vitest";
import { InsertClaims } from "../../../src/manager/insert-claims.js";

describe("InsertClaims", () => {
  it("keeps a claim standing until a newer copy supersedes it", () => {
    const claims = new InsertClaims();
    const a = claims.begin(["1", "2", "2"]);
    expect(claims.size).toBe(2);
    claims.supersede(["2", "9"]);
    expect(claims.end(a)).toEqual(new Set(["1"]));
    expect(claims.size).toBe(0);
  });

  it("lets concurrent inserts of one id share a claim, and starts a fresh one after a supersession", () => {
    const claims = new InsertClaims();
    const a = claims.begin(["7"]);
    const b = claims.begin(["7"]);
    claims.supersede(["7"]); // a poll cached it: both inserts' copies are older
    const c = claims.begin(["7"]); // a resend after that: its copy is not
    expect(claims.end(b)).toEqual(new Set());
    expect(claims.end(a)).toEqual(new Set());
    expect(claims.size).toBe(1);
    expect(claims.end(c)).toEqual(new Set(["7"]));
    expect(claims.size).toBe(0);
  });

  it("forgets an unsuperseded claim only when its last holder ends", () => {
    const claims = new InsertClaims();
    const a = claims.begin(["3"]);
    const b = claims.begin(["3"]);
    expect(claims.end(a)).toEqual(new Set(["3"]));
    expect(claims.size).toBe(1);
    expect(claims.end(b)).toEqual(new Set(["3"]));
    expect(claims.size).toBe(0);
  });
});
