/**
 * Property: good and bad messages mixed at random in concurrent enqueue requests (so they share coalesced
 * INSERTs). Every good request gets 201, every bad one a 400 naming its first bad message's field, and the
 * table holds exactly the good messages, each payload byte for byte as sent.
 */
import fc from "fast-check";
import { expect, it } from "vitest";
import { describeWithDatabase, uniqueTableName } from "../support/database.js";
import { http, useServerDatabase, useTestServer } from "../support/server.js";

/** A signed id column and a CHECK of its own: every way a row can be refused applies to this table. */
const TABLE_DDL = (name: string) => `CREATE TABLE ${name} (
  id BIGINT NOT NULL, priority TINYINT UNSIGNED NOT NULL DEFAULT 50, epoch BIGINT NOT NULL DEFAULT 0,
  time_next BIGINT DEFAULT 0, time_acked BIGINT DEFAULT NULL, message JSON,
  PRIMARY KEY (id), INDEX poller_idx (time_acked, priority, time_next),
  CONSTRAINT no_poison CHECK (message NOT LIKE '%poison%')
) COMMENT 'vitess_message,vt_ack_wait=30,vt_poller_interval=30'`;

type Bad = "surrogate" | "deep" | "idRange" | "poison" | "delayAndDeliverAt" | "priority";
interface Message {
  id: string;
  text: string;
  bad?: Bad;
}

/** What a 400 for each kind names (the message's index is prefixed). */
const FIELD: Record<Bad, RegExp> = {
  surrogate: /^messages\[(\d+)\]\.payload: contains \\u[dD][89a-fA-F][0-9a-fA-F]{2}, a lone UTF-16 surrogate/,
  deep: /^messages\[(\d+)\]\.payload: nested deeper than 31 levels/,
  idRange: /^messages\[(\d+)\]\.id: must be at most 9223372036854775807/,
  poison: /^messages: the database refused it: CONSTRAINT `no_poison` failed/,
  delayAndDeliverAt: /^messages\[(\d+)\]\.delayMs and messages\[\d+\]\.deliverAt/,
  priority: /^messages\[?(\d+)?\]?\.priority must be <= 255/,
};

const payloadText = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v, null, 1)),
  fc.constantFrom("9007199254740993", "18446744073709551615", "1e400", "-0", "1.0", '"\\ud83d\\ude00 é"', '{"a":1,"a":2}'),
);

let nextId = 1n;
const goodMessage = payloadText.map((text): Message => ({ id: String(nextId++), text }));
const badMessage = fc.constantFrom<Bad>("surrogate", "deep", "idRange", "poison", "delayAndDeliverAt", "priority").map((bad): Message => {
  const id = String(nextId++);
  switch (bad) {
    case "surrogate":
      return { id, bad, text: '{"s":"x\\udc00"}' };
    case "deep":
      return { id, bad, text: "[".repeat(32) + "]".repeat(32) };
    case "idRange":
      return { id: "9223372036854775808", bad, text: "1" };
    case "poison":
      return { id, bad, text: '"poison"' };
    default:
      return { id, bad, text: "2" };
  }
});
/** A request: mostly good messages, sometimes one or two bad ones among them. */
const request = fc.oneof(
  { weight: 3, arbitrary: fc.array(goodMessage, { minLength: 1, maxLength: 6 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.array(goodMessage, { maxLength: 4 }), badMessage, fc.array(fc.oneof(goodMessage, badMessage), { maxLength: 3 }))
      .map(([a, b, c]) => [...a, b, ...c]),
  },
);

function bodyOf(messages: Message[]): string {
  const items = messages.map((m) => {
    const extra = m.bad === "delayAndDeliverAt" ? ',"delayMs":1,"deliverAt":1' : m.bad === "priority" ? ',"priority":256' : "";
    return `{"id":"${m.id}"${extra},"payload":${m.text}}`;
  });
  return `{"messages":[${items.join(",")}]}`;
}

describeWithDatabase("fault: good and bad messages mixed in concurrent requests", () => {
  const t = useTestServer("faults_mixed");
  const conn = useServerDatabase(t);

  it("every good request 201, every bad one 400 naming its field; the table holds exactly the good messages, byte for byte", async () => {
    let runs = 0;
    let requests = 0;
    let badRequests = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 10, maxLength: 60 }), async (batch) => {
        runs++;
        const table = uniqueTableName("mixed");
        await conn.pool.query(TABLE_DDL(table));
        try {
          const answers = await Promise.all(batch.map((m) => http(t.base, "POST", `/v1/tables/${table}/messages`, undefined, bodyOf(m))));
          const expected = new Map<string, string>();
          batch.forEach((messages, r) => {
            requests++;
            const answer = answers[r]!;
            const firstBad = messages.findIndex((m) => m.bad !== undefined);
            if (firstBad < 0) {
              expect(answer.status, JSON.stringify(answer.body)).toBe(201);
              for (const m of messages) expected.set(m.id, m.text);
              return;
            }
            badRequests++;
            expect(answer.status, JSON.stringify(answer.body)).toBe(400);
            expect(answer.body.error.code).toBe("validation_failed");
            // Schema errors come first (priority), then the first bad message's own check.
            const kinds = messages.filter((m) => m.bad).map((m) => m.bad!);
            const named = kinds.some((k) => FIELD[k].test(answer.body.error.message));
            expect(named, `${answer.body.error.message} for ${kinds.join(",")}`).toBe(true);
          });
          const [rows] = await conn.pool.query(`SELECT CAST(id AS CHAR) AS id, message FROM ${table}`);
          const stored = new Map((rows as Array<{ id: string; message: string }>).map((r) => [r.id, r.message]));
          expect(stored).toEqual(expected);
        } finally {
          await conn.pool.query(`DROP TABLE ${table}`);
        }
      }),
      { numRuns: 25, seed: 20261207 },
    );
    console.log(`[faults] mixed-batches ${JSON.stringify({ runs, requests, badRequests })}`);
  }, 60_000);
});
