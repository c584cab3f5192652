import { describe, expect, it } from "vitest";
import { TablemqClient } from "../../../src/client/client.js";
import { newId } from "../../../src/client/ids.js";
import { isMessageId } from "../../../src/ids.js";
import { errorFromResponse, HttpTransport, normalizeBaseUrl, parseRetryAfter, TablemqError } from "../../../src/client/http.js";

type Call = { url: string; init: RequestInit };

function fakeFetch(respond: (call: Call) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const fn = (async (url: string | URL | Request, init?: RequestInit) => {
    const call = { url: String(url), init: init ?? {} };
    calls.push(call);
    return respond(call);
  }) as typeof fetch;
  return { fn, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

describe("HttpTransport", () => {
  it("sends JSON with the bearer token and returns status and body", async () => {
    const f = fakeFetch(() => json(201, { ids: ["1"] }));
    const http = new HttpTransport({ url: "http://h:1/prefix/", token: "s3cret", fetch: f.fn });
    expect(await http.request("POST", "/v1/tables/t/messages", { messages: [] })).toEqual({ status: 201, body: { ids: ["1"] } });
    const { url, init } = f.calls[0]!;
    expect(url).toBe("http://h:1/prefix/v1/tables/t/messages");
    expect(init.headers).toMatchObject({ authorization: "Bearer s3cret", "content-type": "application/json" });
    expect(init.body).toBe('{"messages":[]}');
  });

  it("turns the API error body into a TablemqError with status, code and message", async () => {
    const f = fakeFetch(() => json(404, { error: { code: "table_not_found", message: 'table "x" is not a message table' } }));
    const err = await new HttpTransport({ url: "http://h", fetch: f.fn }).request("GET", "/v1/tables/x").catch((e) => e);
    expect(err).toBeInstanceOf(TablemqError);
    expect(err).toMatchObject({ status: 404, code: "table_not_found", message: 'table "x" is not a message table' });
  });

  it("refuses a payload JSON cannot carry as validation_failed naming it, and sends nothing", async () => {
    const f = fakeFetch(() => json(201, { ids: ["1", "2"] }));
    const client = new TablemqClient({ url: "http://h", fetch: f.fn });
    const err = await client.publish<unknown>("t", [{ payload: 1 }, { payload: 10n }]).catch((e) => e);
    expect(err).toBeInstanceOf(TablemqError);
    expect(err).toMatchObject({ status: 0, code: "validation_failed" });
    expect(err.message).toMatch(/^messages\[1\]\.payload: cannot be serialised as JSON/);
    expect(f.calls).toEqual([]); // before: "unavailable", as if the write might have happened
  });

  it("refuses bad subscribe options alike: a TablemqError, validation_failed, naming the option", () => {
    const client = new TablemqClient({ url: "http://127.0.0.1:9" });
    const cases: Array<[object, string]> = [
      [{ concurrency: 0 }, "concurrency"],
      [{ maxInFlight: 0 }, "maxInFlight"],
      [{ reconnect: { minDelayMs: -1 } }, "reconnect.minDelayMs"],
      [{ autoExtend: true }, "autoExtend"],
      [{ autoExtend: { everyMs: 0 }, onMessage: () => {} }, "autoExtend.everyMs"],
    ];
    for (const [options, field] of cases) {
      let thrown: unknown;
      try {
        client.subscribe("t", options);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, field).toBeInstanceOf(TablemqError);
      expect(thrown, field).toMatchObject({ status: 0, code: "validation_failed" });
      expect((thrown as Error).message.startsWith(`${field}: `), (thrown as Error).message).toBe(true);
    }
  });

  it("reports a network failure as code unavailable with status 0", async () => {
    const f = fakeFetch(() => {
      throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
    });
    const err = await new HttpTransport({ url: "http://h", fetch: f.fn }).request("GET", "/v1/tables").catch((e) => e);
    expect(err).toMatchObject({ status: 0, code: "unavailable" });
    expect(err.message).toContain("ECONNREFUSED");
  });

  it("reports a request that outlives timeoutMs as code timeout with status 0", async () => {
    const f = fakeFetch(
      ({ init }) => new Promise<Response>((_, reject) => init.signal!.addEventListener("abort", () => reject(init.signal!.reason))),
    );
    const err = await new HttpTransport({ url: "http://h", timeoutMs: 30, fetch: f.fn }).request("GET", "/v1/tables").catch((e) => e);
    expect(err).toMatchObject({ status: 0, code: "timeout" });
  });
});

describe("errorFromResponse", () => {
  it("falls back to a code from the status when the body is not the API's", () => {
    expect(errorFromResponse(502, undefined, "<html>bad gateway</html>", null)).toMatchObject({ status: 502, code: "server_error" });
    expect(errorFromResponse(429, undefined, "", "2")).toMatchObject({ code: "overloaded", retryAfterMs: 2000 });
    expect(errorFromResponse(418, undefined, "", null)).toMatchObject({ code: "http_error" });
  });

  it("keeps the ids of a write in doubt (504 outcome_unknown), so they can be published again", () => {
    const body = { error: { code: "outcome_unknown", message: "the database did not answer" }, ids: ["12", "13"] };
    expect(errorFromResponse(504, body, "", null)).toMatchObject({ status: 504, code: "outcome_unknown", ids: ["12", "13"] });
    expect(errorFromResponse(400, { error: { code: "validation_failed", message: "x" } }, "", null).ids).toBeUndefined();
    expect(errorFromResponse(504, undefined, "", null)).toMatchObject({ code: "outcome_unknown" });
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("5")).toBe(5000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    expect(parseRetryAfter(inAMinute)).toBeGreaterThan(55_000);
  });
});

describe("normalizeBaseUrl", () => {
  it("drops trailing slashes and refuses what is not http(s)", () => {
    expect(normalizeBaseUrl("http://127.0.0.1:8080/")).toBe("http://127.0.0.1:8080");
    expect(() => normalizeBaseUrl("ftp://x")).toThrow(TablemqError);
    expect(() => normalizeBaseUrl("not a url")).toThrow(/not a valid server URL/);
  });
});

describe("TablemqClient over a fake fetch", () => {
  it("maps 201 and 200 of PUT to created true and false", async () => {
    let status = 201;
    const f = fakeFetch(() => json(status, { name: "t", options: {}, stats: {} }));
    const client = new TablemqClient({ url: "http://h", fetch: f.fn });
    expect((await client.createTable("t", { ackWaitMs: 1000 })).created).toBe(true);
    status = 200;
    expect((await client.createTable("t")).created).toBe(false);
    expect(f.calls[0]!.init.body).toBe('{"ackWaitMs":1000}');
  });

  it("escapes table names in paths and fills duplicates", async () => {
    const f = fakeFetch(() => json(201, { ids: ["7"] }));
    const client = new TablemqClient({ url: "http://h", fetch: f.fn });
    expect(await client.publish("a/b", { payload: 1 })).toEqual({ ids: ["7"], duplicates: [] });
    expect(f.calls[0]!.url).toBe("http://h/v1/tables/a%2Fb/messages");
  });

  it("acks, postpones and extends by receipt, returning the stale receipts", async () => {
    const f = fakeFetch(({ url }) =>
      url.endsWith("/ack")
        ? json(200, { acked: 1, stale: ["2:0"] })
        : url.endsWith("/postpone")
          ? json(200, { postponed: 0, stale: ["3:1"] })
          : json(200, { extended: 1, stale: [] }),
    );
    const client = new TablemqClient({ url: "http://h", fetch: f.fn });
    expect(await client.ackReceipts("t", ["1:0", "2:0"])).toEqual({ acked: 1, stale: ["2:0"] });
    expect(await client.postponeReceipts("t", ["3:1"], 250)).toEqual({ postponed: 0, stale: ["3:1"] });
    expect(await client.extend("t", ["4:0"], 5_000)).toEqual({ extended: 1, stale: [], unchanged: [] });
    expect(f.calls.map((c) => [c.url, c.init.body])).toEqual([
      ["http://h/v1/tables/t/ack", '{"receipts":["1:0","2:0"]}'],
      ["http://h/v1/tables/t/postpone", '{"receipts":["3:1"],"delayMs":250}'],
      ["http://h/v1/tables/t/extend", '{"receipts":["4:0"],"byMs":5000}'],
    ]);
  });

  it("refuses a message without payload before sending", async () => {
    const f = fakeFetch(() => json(201, { ids: [] }));
    const client = new TablemqClient({ url: "http://h", fetch: f.fn });
    await expect(client.publish("t", [{ payload: 1 }, {} as never])).rejects.toMatchObject({ code: "validation_failed" });
    expect(f.calls).toHaveLength(0);
  });
});

describe("reliable publish", () => {
  it("splits a publish larger than maxBatch into requests, in order, and joins their answers", async () => {
    let next = 0;
    const f = fakeFetch(({ init }) => {
      const { messages } = JSON.parse(String(init.body)) as { messages: unknown[] };
      return json(201, { ids: messages.map(() => String(++next)), ...(next === 2 ? { duplicates: ["2"] } : {}) });
    });
    const client = new TablemqClient({ url: "http://h", fetch: f.fn, maxBatch: 2 });
    const result = await client.publish(
      "t",
      [1, 2, 3, 4, 5].map((payload) => ({ payload })),
    );
    expect(
      f.calls.map((c) => (JSON.parse(String(c.init.body)) as { messages: Array<{ payload: number }> }).messages.map((m) => m.payload)),
    ).toEqual([[1, 2], [3, 4], [5]]);
    expect(result).toEqual({ ids: ["1", "2", "3", "4", "5"], duplicates: ["2"] });
  });

  it("says how many messages were written when a later request fails", async () => {
    const f = fakeFetch(({ init }) =>
      f.calls.length === 1
        ? json(201, { ids: (JSON.parse(String(init.body)) as { messages: unknown[] }).messages.map((_, i) => `1${i}`) })
        : json(
            503,
            { error: { code: "unavailable", message: "the database is unavailable; nothing was written" } },
            { "retry-after": "1" },
          ),
    );
    const client = new TablemqClient({ url: "http://h", fetch: f.fn, maxBatch: 2 });
    const err = await client
      .publish(
        "t",
        [1, 2, 3].map((payload) => ({ payload })),
      )
      .catch((e) => e);
    expect(err).toBeInstanceOf(TablemqError);
    expect(err).toMatchObject({ status: 503, code: "unavailable", retryable: true, outcome: "not_written", retryAfterMs: 1000 });
    expect(err.message).toMatch(/the first 2 of the 3 messages were written/);
  });

  it("tells whether an error is worth retrying and whether its write can have happened", async () => {
    const failing = (thrown: unknown) =>
      new HttpTransport({ url: "http://h", timeoutMs: 30, fetch: fakeFetch(() => Promise.reject(thrown)).fn })
        .request("POST", "/v1/tables/t/messages", {})
        .catch((e: TablemqError) => ({ retryable: e.retryable, outcome: e.outcome }));
    expect(await failing(new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }))).toEqual({
      retryable: true,
      outcome: "not_written",
    });
    expect(await failing(new TypeError("fetch failed", { cause: { code: "ECONNRESET" } }))).toEqual({
      retryable: true,
      outcome: "unknown",
    });
    const answer = (status: number, code: string) => errorFromResponse(status, { error: { code, message: "m" } }, "", null);
    expect([answer(504, "outcome_unknown").retryable, answer(504, "outcome_unknown").outcome]).toEqual([true, "unknown"]);
    expect([answer(429, "overloaded").retryable, answer(429, "overloaded").outcome]).toEqual([true, "not_written"]);
    expect([answer(400, "validation_failed").retryable, answer(400, "validation_failed").outcome]).toEqual([false, "not_written"]);
    const timeout = new TablemqError(0, "timeout", "m");
    expect([timeout.retryable, timeout.outcome]).toEqual([true, "unknown"]);
  });

  it("makes ids in the server's scheme, unique and increasing, to give messages before their first try", () => {
    const ids = Array.from({ length: 5_000 }, () => newId());
    expect(new Set(ids).size).toBe(5_000);
    for (let i = 1; i < ids.length; i++) expect(BigInt(ids[i]!) > BigInt(ids[i - 1]!)).toBe(true);
    expect(ids.every((id) => isMessageId(id))).toBe(true);
  });
});

describe("publish with retry", () => {
  const enqueueBody = (c: Call) => JSON.parse(String(c.init.body)) as { messages: Array<{ id?: string; payload: unknown }> };

  it("sends the same ids again after an unknown outcome, and does not report its own earlier write as a duplicate", async () => {
    const f = fakeFetch((call) => {
      if (f.calls.length === 1) throw new TypeError("fetch failed", { cause: { code: "ECONNRESET" } });
      const ids = enqueueBody(call).messages.map((m) => m.id!);
      return json(201, { ids, duplicates: [ids[0], "7"] }); // the first try had written ids[0]; "7" was the caller's
    });
    const client = new TablemqClient({ url: "http://h", fetch: f.fn });
    const result = await client.publish("t", [{ payload: 1 }, { id: "7", payload: 2 }], { retry: { attempts: 3 } });
    expect(f.calls).toHaveLength(2);
    const [first, second] = f.calls.map((c) => enqueueBody(c).messages.map((m) => m.id));
    expect(first).toEqual(second); // the same ids, made before the first try
    expect(isMessageId(first![0])).toBe(true);
    expect(result).toEqual({ ids: second, duplicates: ["7"] });
  });

  it("does not send again what is not retryable, and gives up after the attempts", async () => {
    const refused = fakeFetch(() => json(400, { error: { code: "validation_failed", message: "messages[0].payload: bad" } }));
    await expect(
      new TablemqClient({ url: "http://h", fetch: refused.fn }).publish("t", { payload: 1 }, { retry: { attempts: 3 } }),
    ).rejects.toMatchObject({
      status: 400,
    });
    expect(refused.calls).toHaveLength(1);
    const down = fakeFetch(() => json(503, { error: { code: "unavailable", message: "m" } }, { "retry-after": "0" }));
    await expect(
      new TablemqClient({ url: "http://h", fetch: down.fn }).publish("t", { payload: 1 }, { retry: { attempts: 2 } }),
    ).rejects.toMatchObject({
      status: 503,
    });
    expect(down.calls).toHaveLength(2);
  });
});
