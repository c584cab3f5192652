/** The server list of a client given several URLs: where it starts, how it goes round, and when a request moves on. */
import { describe, expect, it } from "vitest";
import { TablemqClient } from "../../../src/client/client.js";
import { normalizeServerUrls, TablemqError } from "../../../src/client/http.js";
import { afterFailure, ServerList } from "../../../src/client/servers.js";

const A = "http://a:1";
const B = "http://b:2";
const C = "http://c:3";

describe("ServerList", () => {
  it("starts at a random entry", () => {
    const startAt = (r: number) => new ServerList([A, B, C], { random: () => r }).current;
    expect([startAt(0), startAt(0.34), startAt(0.67), startAt(0.9999)]).toEqual([A, B, C, C]);
  });

  it("tries the current server first, then the others in the order given", () => {
    expect(new ServerList([A, B, C], 0).order()).toEqual([A, B, C]);
    expect(new ServerList([A, B, C], 1).order()).toEqual([B, C, A]);
    expect(new ServerList([A, B, C], 2).order()).toEqual([C, A, B]);
    expect(new ServerList([A], { random: () => 0.7 }).order()).toEqual([A]);
  });

  it("moves on round robin from a server that failed, wrapping at the end", () => {
    const list = new ServerList([A, B, C], 1);
    const seen = [list.current];
    for (let i = 0; i < 4; i++) {
      list.moveOn(list.current);
      seen.push(list.current);
    }
    expect(seen).toEqual([B, C, A, B, C]);
  });

  it("does not move on twice for one server: a failure reported after another request moved on is ignored", () => {
    const list = new ServerList([A, B, C], 0);
    list.moveOn(A); // two requests to A failed at the same time
    list.moveOn(A);
    expect(list.current).toBe(B);
  });

  it("stays on its only server", () => {
    const list = new ServerList([A], 0);
    list.moveOn(A);
    expect(list.current).toBe(A);
  });

  it("forks a rotation of its own at the current server (a subscription's), which moves apart from it", () => {
    const list = new ServerList([A, B, C], 1);
    const sub = list.fork();
    expect(sub.current).toBe(B);
    sub.moveOn(B);
    expect([sub.current, list.current]).toEqual([C, B]);
    list.moveOn(B);
    list.moveOn(C);
    expect(list.fork().current).toBe(A);
  });
});

describe("the url option", () => {
  it("takes one URL or a list, normalized, duplicates dropped, in the order given", () => {
    expect(normalizeServerUrls("http://a:1/")).toEqual([A]);
    expect(normalizeServerUrls([B, "http://a:1//", A, "https://c/p/"])).toEqual([B, A, "https://c/p"]);
  });

  it("refuses an empty list and a URL that is not http(s), naming it, before anything is sent", () => {
    expect(() => new TablemqClient({ url: [] })).toThrow(TablemqError);
    expect(() => new TablemqClient({ url: [] })).toThrow(/no server URL/);
    expect(() => new TablemqClient({ url: [A, "ftp://x"] })).toThrow(/must be http:\/\/ or https:\/\/, got "ftp:\/\/x"/);
    expect(() => new TablemqClient({ url: [A, "not a url"] })).toThrow(/not a valid server URL: "not a url"/);
  });

  it("says where requests go now", () => {
    expect(new TablemqClient({ url: "http://a:1/" }).url).toBe(A);
    expect([A, B]).toContain(new TablemqClient({ url: [A, B] }).url);
  });
});

describe("afterFailure", () => {
  const noAnswer = (code: string) =>
    new TablemqError(0, "unavailable", "m", undefined, { cause: new TypeError("fetch failed", { cause: { code } }) });
  const answer = (status: number, code: string) => new TablemqError(status, code, "m");

  it("sends a request that never left to the next server at once, a write too", () => {
    for (const code of ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]) {
      expect(afterFailure(noAnswer(code), "POST"), code).toBe("resend");
    }
  });

  it("does not send again a write that may have reached the server; later requests go to the next one", () => {
    expect(afterFailure(noAnswer("ECONNRESET"), "POST")).toBe("move");
    expect(afterFailure(noAnswer("EPIPE"), "PUT")).toBe("move");
    expect(afterFailure(noAnswer("ECONNRESET"), "DELETE")).toBe("move");
    expect(afterFailure(new TablemqError(0, "timeout", "m"), "POST")).toBe("move");
  });

  it("sends a read whose connection dropped to the next server (it changes nothing), but not one that timed out", () => {
    expect(afterFailure(noAnswer("ECONNRESET"), "GET")).toBe("resend");
    expect(afterFailure(new TablemqError(0, "timeout", "m"), "GET")).toBe("move");
  });

  it("stays with a server that answered, whatever the status, and with a request refused before sending", () => {
    for (const [status, code] of [
      [503, "unavailable"],
      [504, "outcome_unknown"],
      [429, "overloaded"],
      [404, "table_not_found"],
      [500, "internal"],
    ] as const) {
      expect(afterFailure(answer(status, code), "POST"), code).toBe("stay");
    }
    expect(afterFailure(new TablemqError(0, "validation_failed", "m"), "POST")).toBe("stay");
  });
});
