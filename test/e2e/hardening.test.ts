/**
 * Issue 22's defects, each as seen from outside: one bad message fails only its own request, payloads are
 * stored and delivered byte for byte, delays are kept without a subscriber, and bad input of every kind is
 * answered in docs/API.md's error body.
 */
import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { expect, it } from "vitest";
import { describeWithDatabase, uniqueTableName } from "../support/database.js";
import { http, useServerDatabase, useTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

const FAST = { ackWaitMs: 2_000, minBackoffMs: 500, pollIntervalMs: 30_000, batchSize: 50 };
const VITESS_COLUMNS = `
  id BIGINT NOT NULL, priority TINYINT UNSIGNED NOT NULL DEFAULT 50, epoch BIGINT NOT NULL DEFAULT 0,
  time_next BIGINT DEFAULT 0, time_acked BIGINT DEFAULT NULL, message JSON,
  PRIMARY KEY (id), INDEX poller_idx (time_acked, priority, time_next)`;
const COMMENT =
  "COMMENT 'vitess_message,vt_ack_wait=2,vt_purge_after=86400,vt_batch_size=50,vt_cache_size=10000,vt_poller_interval=30,vt_min_backoff=1'";

describeWithDatabase("hardening: a bad message hurts only itself", () => {
  const t = useTestServer("hardening_e2e");
  const conn = useServerDatabase(t);

  const newTable = async (options: object = FAST) => {
    const table = uniqueTableName("hard");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, options)).status).toBe(201);
    return table;
  };
  const post = (table: string, raw: string) => http(t.base, "POST", `/v1/tables/${table}/messages`, undefined, raw);
  const stored = async (table: string): Promise<string[]> => {
    const [rows] = await conn.pool.query(`SELECT message FROM ${table} ORDER BY id`);
    return (rows as Array<{ message: string }>).map((r) => r.message);
  };

  /**
   * 200 good requests of 20 messages each and `bad` sent at once: every good one 201, `bad` a 400 naming
   * `field`, and the table holds exactly the good messages.
   */
  const goodNeighbours = async (table: string, bad: string, field: RegExp) => {
    const good = Array.from({ length: 200 }, (_, r) =>
      JSON.stringify({ messages: Array.from({ length: 20 }, (_, i) => ({ payload: { r, i } })) }),
    );
    const at = 73;
    const bodies = [...good.slice(0, at), bad, ...good.slice(at)];
    const answers = await Promise.all(bodies.map((b) => post(table, b)));
    const badAnswer = answers[at]!;
    expect(badAnswer.status, JSON.stringify(badAnswer.body)).toBe(400);
    expect(badAnswer.body.error.code).toBe("validation_failed");
    expect(badAnswer.body.error.message).toMatch(field);
    const statuses = answers.filter((_, i) => i !== at).map((a) => a.status);
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    expect((await stored(table)).length).toBe(200 * 20);
  };

  it("a lone surrogate is refused with 400 naming its payload; 200 concurrent good requests are all written", async () => {
    const table = await newTable();
    await goodNeighbours(
      table,
      '{"messages":[{"payload":1},{"payload":"lone \\ud800"}]}',
      /^messages\[1\]\.payload: contains \\ud800, a lone UTF-16 surrogate/,
    );
  });

  it("an id past a signed BIGINT id column is refused with 400 naming it; the others are written", async () => {
    const table = uniqueTableName("signed");
    await conn.pool.query(`CREATE TABLE ${table} (${VITESS_COLUMNS}) ${COMMENT}`);
    await http(t.base, "GET", `/v1/tables/${table}`); // discovered
    await goodNeighbours(
      table,
      '{"messages":[{"payload":1},{"id":"9223372036854775808","payload":2}]}',
      /^messages\[1\]\.id: must be at most 9223372036854775807/,
    );
    const ok = await post(table, '{"messages":[{"id":"9223372036854775807","payload":2}]}');
    expect(ok.status).toBe(201);
    await conn.pool.query(`DROP TABLE ${table}`);
  });

  it("a row the database itself refuses (a CHECK of the table's) fails only its own request: the shared INSERT is split", async () => {
    const table = uniqueTableName("check");
    await conn.pool.query(`CREATE TABLE ${table} (${VITESS_COLUMNS}, CONSTRAINT no_poison CHECK (message NOT LIKE '%poison%')) ${COMMENT}`);
    await http(t.base, "GET", `/v1/tables/${table}`);
    await goodNeighbours(
      table,
      '{"messages":[{"payload":"fine"},{"payload":"poison"}]}',
      /^messages: the database refused it: CONSTRAINT `no_poison` failed/,
    );
    await conn.pool.query(`DROP TABLE ${table}`);
  });

  it("never answers 500 for an id out of range on a table whose id column is an INT", async () => {
    const table = uniqueTableName("intid");
    await conn.pool.query(`CREATE TABLE ${table} (${VITESS_COLUMNS.replace("id BIGINT NOT NULL", "id INT UNSIGNED NOT NULL")}) ${COMMENT}`);
    await http(t.base, "GET", `/v1/tables/${table}`);
    const res = await post(table, '{"messages":[{"id":"4294967296","payload":1}]}');
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/^messages\[0\]\.id: must be at most 4294967295/);
    // Server-made ids (64-bit) do not fit such a column: refused before the INSERT, and the answer says where.
    const made = await post(table, '{"messages":[{"payload":1}]}');
    expect(made.status).toBe(400);
    expect(made.body.error.message).toMatch(/^messages\[0\]\.id: [0-9]+ is larger than the table's id column holds \(4294967295\)$/);
    await conn.pool.query(`DROP TABLE ${table}`);
  });
});

describeWithDatabase("hardening: payloads are stored and delivered exactly as sent", () => {
  const t = useTestServer("fidelity_e2e");

  const PAYLOADS = [
    "9007199254740993",
    "18446744073709551615",
    "-18446744073709551616",
    "1e400",
    "-0",
    "1.0",
    "1.50E+2",
    '"\\u00e9\\ud83d\\ude00 \\/ \\"quoted\\" é😀"',
    '{ "b" : 1 ,"a":[ 1 , 2.000 ], "a":"repeated key"}',
    '{"__proto__":{"polluted":true},"constructor":{"prototype":{}}}',
    "[".repeat(31) + "]".repeat(31),
    "null",
    '""',
  ];

  it("a subscriber's frames carry each payload's bytes as the producer wrote them", async () => {
    const table = uniqueTableName("fidelity");
    await http(t.base, "PUT", `/v1/tables/${table}`, FAST);
    const body = `{"messages":[${PAYLOADS.map((p, i) => `{"priority":${i},"payload":${p}}`).join(",")}]}`;
    const res = await http(t.base, "POST", `/v1/tables/${table}/messages`, undefined, body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const s = await t.subscribe(table);
    await waitUntil(() => s.messages.length === PAYLOADS.length, "every message");
    const received = s.rawFrames.filter((f) => f.startsWith('{"type":"messages"')).join("\n");
    for (const p of PAYLOADS) expect(received).toContain(`"payload":${p}}`);
  });

  it("a dead letter is listed with its payload's bytes as sent", async () => {
    const table = uniqueTableName("fiddead");
    await http(t.base, "PUT", `/v1/tables/${table}`, { ...FAST, ackWaitMs: 300, minBackoffMs: 100, pollIntervalMs: 200, maxAttempts: 1 });
    const payload = '{"n":9007199254740993,"x":1e400,"z":-0}';
    expect((await http(t.base, "POST", `/v1/tables/${table}/messages`, undefined, `{"messages":[{"payload":${payload}}]}`)).status).toBe(
      201,
    );
    const s = await t.subscribe(table); // never acks: after one delivery the message is dead
    await waitUntil(() => s.messages.length === 1, "the delivery");
    let text = "";
    await waitUntil(
      async () => {
        text = await (await fetch(`${t.base}/v1/tables/${table}/dead`)).text();
        return text.includes('"payload"');
      },
      "the dead letter",
      10_000,
    );
    expect(text).toContain(`"payload":${payload}}`);
  });
});

describeWithDatabase("hardening: a short delay is kept without a subscriber", () => {
  const t = useTestServer("delay_e2e");

  it("a message delayed 1.5 s, enqueued with nobody subscribed, arrives on time (the poll interval is 30 s)", async () => {
    const table = uniqueTableName("delay");
    await http(t.base, "PUT", `/v1/tables/${table}`, { ...FAST, pollIntervalMs: 30_000 });
    const sent = Date.now();
    expect((await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: 1, delayMs: 1_500 }] })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 300));
    const s = await t.subscribe(table);
    await waitUntil(() => s.messages.length === 1, "the delayed message", 10_000);
    const late = Date.now() - sent - 1_500;
    expect(late).toBeGreaterThanOrEqual(-50);
    expect(late).toBeLessThan(5_000); // before the fix: ~28 s (the next poll)
  });
});

describeWithDatabase("hardening: every refusal in docs/API.md's error body", () => {
  const t = useTestServer("refusals_e2e");

  const expectError = (res: { status: number; body: any }, status: number, code: string, message: RegExp) => {
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toMatch(message);
  };

  it("delayMs and deliverAt together: 400 naming both, nothing written", async () => {
    const table = uniqueTableName("both");
    await http(t.base, "PUT", `/v1/tables/${table}`, FAST);
    const res = await http(t.base, "POST", `/v1/tables/${table}/messages`, {
      messages: [{ payload: 1 }, { payload: 2, delayMs: 5, deliverAt: 5 }],
    });
    expectError(res, 400, "validation_failed", /^messages\[1\]\.delayMs and messages\[1\]\.deliverAt: give one or the other, not both$/);
    expect((await http(t.base, "GET", `/v1/tables/${table}`)).body.stats).toMatchObject({ ready: 0, delayed: 0 });
  });

  it("__proto__: carried inside a payload, refused as an unknown field elsewhere, and said why on other routes", async () => {
    const table = uniqueTableName("proto");
    await http(t.base, "PUT", `/v1/tables/${table}`, FAST);
    const top = await http(t.base, "POST", `/v1/tables/${table}/messages`, undefined, '{"messages":[{"payload":1}],"__proto__":{"x":1}}');
    expectError(top, 400, "validation_failed", /unknown field "__proto__"/);
    const put = await http(t.base, "PUT", `/v1/tables/${table}`, undefined, '{"__proto__":{"ackWaitMs":1}}');
    expectError(put, 400, "bad_request", /"__proto__" and "constructor.prototype" are refused here/);
    const malformed = await http(t.base, "PUT", `/v1/tables/${table}`, undefined, '{"ackWaitMs":');
    expectError(malformed, 400, "bad_request", /^body: malformed JSON \(.+\)$/);
  });

  it("a compressed body: 415 naming the encoding", async () => {
    const table = uniqueTableName("gzip");
    await http(t.base, "PUT", `/v1/tables/${table}`, FAST);
    const res = await fetch(`${t.base}/v1/tables/${table}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipSync('{"messages":[{"payload":1}]}'),
    });
    expectError({ status: res.status, body: await res.json() }, 415, "unsupported_encoding", /content-encoding "gzip" is not supported/);
  });

  it("headers over 16 KiB: 431 in docs/API.md's error body", async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const url = new URL(t.base);
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(`GET /v1/tables HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`);
      });
      let text = "";
      socket.on("data", (d) => (text += d.toString()));
      socket.on("close", () => resolve(text));
      socket.on("error", reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));
    expect(body).toEqual({ error: { code: "headers_too_large", message: expect.stringMatching(/^headers: /) } });
  });

  it("a webhook URL with CR or LF: 400 naming it, nothing stored", async () => {
    const table = uniqueTableName("hookcr");
    await http(t.base, "PUT", `/v1/tables/${table}`, FAST);
    for (const url of ["http://x/a\r\nb", "http://x/\nb", "http://x/\tb"]) {
      expectError(
        await http(t.base, "PUT", `/v1/tables/${table}/webhooks/w`, { url }),
        400,
        "validation_failed",
        /^url: must not contain control characters/,
      );
    }
    expect((await http(t.base, "GET", `/v1/tables/${table}/webhooks`)).body).toEqual({ webhooks: [] });
  });

  it("<name>_dlq and <name> are never both message tables: 409 naming the conflict, either way round", async () => {
    const base = uniqueTableName("dlqname");
    expect((await http(t.base, "PUT", `/v1/tables/${base}`, FAST)).status).toBe(201);
    expectError(
      await http(t.base, "PUT", `/v1/tables/${base}_dlq`, FAST),
      409,
      "conflict",
      new RegExp(`${base}_dlq is the name of ${base}'s dead-letter table`),
    );
    const other = uniqueTableName("dlqfirst");
    expect((await http(t.base, "PUT", `/v1/tables/${other}_dlq`, FAST)).status).toBe(201);
    expectError(await http(t.base, "PUT", `/v1/tables/${other}`, FAST), 409, "conflict", new RegExp(`${other}_dlq is a message table`));
    expect((await http(t.base, "GET", `/v1/tables/${other}`)).status).toBe(404);
  });
});
