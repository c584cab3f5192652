/**
 * Bad input at scale against one server: ~2000 generated malformed HTTP requests and ~1000 bad WebSocket
 * frames, from a seeded PRNG (FUZZ_SEED, default 20251123) so a run can be repeated exactly.
 *
 * Every HTTP answer must be one docs/API.md allows for a bad request, with docs/API.md's error body
 * `{"error": {"code", "message"}}`: 400 (`bad_request` / `validation_failed`), 404 (`table_not_found` /
 * `message_not_found`, and the README's `not_found` for an unknown route), 413 (`payload_too_large`) or
 * 429 (`overloaded`). Not 401/403 (no auth is configured here), not 409 (no request names a non-message
 * table), never 5xx, never 2xx, never 415 (README: a wrong content type is a 400). The target table's rows
 * (count and a checksum of every column), its options and the list of tables must be unchanged, the server
 * must answer /healthz, and a well-behaved subscriber on another table keeps receiving throughout.
 *
 * Every bad frame must be answered with an error frame, and the 10th bad frame on a socket with close
 * 1008; protocol-level violations are closed by the WebSocket layer (1007 invalid UTF-8, 1009 too big).
 */
import http from "node:http";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { RunningServer } from "../../src/server/server.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { describeWithDatabase, useOwnDatabase } from "../support/database.js";
import { startTestServer } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";
import { Consumer, prng, recordFigures, request, tableChecksum } from "./support.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20251123);
const BODY_LIMIT = 256 * 1024;
const MAX_PAYLOAD = 64 * 1024;
const MAX_DELAY_MS = 3_155_760_000_000;
const TARGET = "fuzz_target";
/** The WebSocket part's own target (same seeded rows), so nothing the HTTP part did can reach it. */
const TARGET_WS = "fuzz_target_ws";
const CONTROL = "fuzz_control";
/** Ids of the target's rows (all delayed by an hour, so nothing is delivered or changed by a poll). */
const SEEDED = Array.from({ length: 20 }, (_, i) => String(1000 + i));

/** Statuses docs/API.md allows for a malformed request (see the file comment), with the codes each may carry. */
const ALLOWED: Record<number, string[]> = {
  400: ["bad_request", "validation_failed"],
  404: ["table_not_found", "message_not_found", "not_found"],
  413: ["payload_too_large"],
  429: ["overloaded"],
};

// ------------------------------------------------------------------------------------------------
// Generation

type Rnd = () => number;
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

/** A JSON value spliced in as raw text: numbers JavaScript cannot write (1e400, 30 digits). */
class Raw {
  constructor(readonly text: string) {}
}
/** JSON text with Raw values spliced in and any key (including "__proto__") kept. */
function json(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(json).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${json(v)}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
/** An object with own keys exactly as given (so "__proto__" is a key, not the prototype). */
const obj = (entries: Array<[string, unknown]>): Record<string, unknown> => {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true, writable: true });
  return o;
};
const nestedArrays = (depth: number, inner = "1") => "[".repeat(depth) + inner + "]".repeat(depth);
const nestedObjects = (depth: number) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth);

const BAD_PRIORITY = [
  256,
  -1,
  1.5,
  "1",
  null,
  true,
  [],
  {},
  [1],
  new Raw("1e400"),
  new Raw("-1e400"),
  new Raw("256.0"),
  new Raw("1e3"),
  new Raw("255.5"),
  new Raw("123456789012345678901234567890"),
  new Raw("-9007199254740993"),
  "",
  "NaN",
  "0x10",
];
const BAD_DELAY = [
  -1,
  1.5,
  "5",
  null,
  true,
  [],
  {},
  MAX_DELAY_MS + 1,
  new Raw("1e400"),
  new Raw("1e21"),
  new Raw("-1e-7"),
  new Raw("0.5"),
  new Raw("123456789012345678901234567890"),
  "Infinity",
];
const BAD_DELIVER_AT = [-1, 0.5, "0", null, false, [], 9_000_000_000_001, new Raw("1e400"), new Raw("1e16"), new Raw("-0.5")];
/** Never an id the server accepts. */
const BAD_IDS: unknown[] = [
  5,
  0,
  -1,
  null,
  true,
  [],
  {},
  ["1"],
  "",
  " 1",
  "1 ",
  "abc",
  "-1",
  "+1",
  "01",
  "00",
  "1e3",
  "0x10",
  "1.0",
  "١٢٣",
  "１２３",
  "18446744073709551616",
  "99999999999999999999",
  "123456789012345678901",
  "1\u0000",
  "1\n",
  "' OR '1'='1",
  "1; DROP TABLE fuzz_target; --",
  "1) OR (1=1",
  "1`",
  '1"',
  "1\\",
  "%31",
  new Raw("1e400"),
  new Raw("18446744073709551615"),
];
/** Never a receipt the server accepts. */
const BAD_RECEIPTS: unknown[] = [
  ...BAD_IDS,
  "1000",
  "1000:",
  ":0",
  "1000:-1",
  "1000:1.5",
  "1000:01",
  "1000:0:0",
  "1000: 0",
  "1000:1e3",
  "a:b",
  "18446744073709551616:0",
  "1000:1234567890123456",
  "1000:0\u0000",
  "01:0",
  "1000;0",
];
const UNKNOWN_KEYS = [
  "colour",
  "Payload",
  "PRIORITY",
  "id ",
  "__proto__",
  "constructor",
  "",
  "payload\u0000",
  "ïd",
  "ref",
  "type",
  "deliver_at",
];
const VALID_PAYLOADS: unknown[] = [1, "s", { a: 1 }, [1, 2], null, true, { nested: { deep: [1, { x: "y" }] } }, "ünïcødé ☃ 🚀"];

function validMessage(rnd: Rnd): Record<string, unknown> {
  const m: Record<string, unknown> = { payload: pick(rnd, VALID_PAYLOADS) };
  if (rnd() < 0.3) m.priority = Math.floor(rnd() * 256);
  if (rnd() < 0.2) m.delayMs = Math.floor(rnd() * 10_000) + 3_600_000;
  return m;
}

/** A message that the server must reject, and what is wrong with it. */
function badMessage(rnd: Rnd): Record<string, unknown> {
  const m = validMessage(rnd);
  switch (Math.floor(rnd() * 7)) {
    case 0:
      m.priority = pick(rnd, BAD_PRIORITY);
      break;
    case 1:
      m.delayMs = pick(rnd, BAD_DELAY);
      break;
    case 2:
      m.deliverAt = pick(rnd, BAD_DELIVER_AT);
      break;
    case 3:
      m.id = pick(rnd, BAD_IDS);
      break;
    case 4:
      delete m.payload;
      break;
    case 5:
      return obj([...Object.entries(m), [pick(rnd, UNKNOWN_KEYS), pick(rnd, [1, "x", null, {}])]]);
    default:
      m.payload = "x".repeat(MAX_PAYLOAD + 1 + Math.floor(rnd() * 1000)); // one payload over the limit: 413
  }
  return m;
}

/** 1..4 messages, exactly one of them bad, at a random place: the whole request must be refused. */
function badMessages(rnd: Rnd): unknown[] {
  const list = Array.from({ length: Math.floor(rnd() * 4) }, () => validMessage(rnd));
  list.splice(Math.floor(rnd() * (list.length + 1)), 0, badMessage(rnd));
  return list;
}

interface Case {
  category: string;
  method: string;
  /** Raw request target, sent as is (no normalisation of "..", no re-encoding). */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Send the body chunked (no content-length). */
  chunked?: boolean;
}

const JSON_HEADERS = { "content-type": "application/json" };
const post = (category: string, path: string, body: string | Buffer, headers: Record<string, string> = JSON_HEADERS): Case => ({
  category,
  method: "POST",
  path,
  headers,
  body,
});

const HOSTILE_TABLES = [
  "..",
  "../..",
  "..%2f..%2fetc%2fpasswd",
  "%2e%2e",
  "%2e%2e%2f%2e%2e",
  "....//",
  ".",
  "%00",
  "a%00b",
  "a'b",
  "a%27b",
  "a%22b",
  "a`b",
  "a%60b",
  "a;DROP%20TABLE%20fuzz_target;--",
  "t%27%20OR%20%271%27%3D%271",
  "fuzz_target%27",
  "fuzz_target%00",
  "fuzz_target%20",
  "%20fuzz_target",
  "Fuzz_target",
  "FUZZ_TARGET",
  "A",
  "1abc",
  "_a",
  "a-b",
  "a%20b",
  "a.b",
  "a$b",
  "a%2Fb",
  "a%5Cb",
  "a\\b",
  "a+b",
  "a*",
  "a%25",
  "%C3%A9",
  "tabl%C3%A9",
  "%D1%82%D0%B0%D0%B1%D0%BB%D0%B8%D1%86%D0%B0",
  "%E8%A1%A8",
  "a%E2%80%8Bb",
  "%EF%BD%81",
  "a%CC%81",
  "%F0%9F%9A%80",
  "a".repeat(64),
  "b".repeat(65),
  "c".repeat(99),
  "mysql.user",
  "information_schema.tables",
  "%",
  "%ZZ",
  "%E0%A4%A",
  "%C0%AF",
  "a".repeat(101),
  "z".repeat(1000),
  "q".repeat(4000),
];

function tableCases(rnd: Rnd, n: number): Case[] {
  const cases: Case[] = [];
  for (let i = 0; i < n; i++) {
    const t = pick(rnd, HOSTILE_TABLES);
    const route = pick(rnd, ["get", "put", "delete", "messages", "ack", "postpone", "extend", "dead", "redrive", "subscribe"] as const);
    const base = `/v1/tables/${t}`;
    const category = "hostile table name";
    switch (route) {
      case "get":
        cases.push({ category, method: "GET", path: base });
        break;
      case "put":
        cases.push({ category, method: "PUT", path: base, headers: JSON_HEADERS, body: "{}" });
        break;
      case "delete":
        cases.push({ category, method: "DELETE", path: base });
        break;
      case "messages":
        cases.push(post(category, `${base}/messages`, json({ messages: [{ payload: 1 }] })));
        break;
      case "ack":
        cases.push(post(category, `${base}/ack`, json({ ids: [SEEDED[0]] })));
        break;
      case "postpone":
        cases.push(post(category, `${base}/postpone`, json({ ids: [SEEDED[0]], delayMs: 1 })));
        break;
      case "extend":
        cases.push(post(category, `${base}/extend`, json({ receipts: [`${SEEDED[0]}:0`], byMs: 1 })));
        break;
      case "dead":
        cases.push({ category, method: "GET", path: `${base}/dead` });
        break;
      case "redrive":
        cases.push(post(category, `${base}/redrive`, json({ all: true })));
        break;
      case "subscribe":
        cases.push({ category, method: "GET", path: `${base}/subscribe` });
        break;
    }
  }
  return cases;
}

const UTF8_BAD = [
  [0xff],
  [0xfe],
  [0xc3, 0x28],
  [0xe2, 0x28, 0xa1],
  [0xf0, 0x28, 0x8c, 0xbc],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0x80],
  [0xe2, 0x82],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
];

/** Builds the ~2000 HTTP cases. */
function httpCases(seed: number): Case[] {
  const rnd = prng(seed);
  const cases: Case[] = [];
  const messages = `/v1/tables/${TARGET}/messages`;
  const ack = `/v1/tables/${TARGET}/ack`;
  const postpone = `/v1/tables/${TARGET}/postpone`;
  const table = `/v1/tables/${TARGET}`;

  // Enqueue: wrong types, out-of-range and huge numbers, bad ids, unknown fields, one bad message in a batch.
  for (let i = 0; i < 600; i++) cases.push(post("enqueue: bad message", messages, json({ messages: badMessages(rnd) })));
  const badBodies: unknown[] = [
    [],
    "str",
    1,
    null,
    true,
    {},
    { messages: {} },
    { messages: "x" },
    { messages: [] },
    { messages: null },
    { messages: [1] },
    { messages: [[]] },
    { messages: [null] },
    { messages: [{ payload: 1 }], extra: 1 },
    { Messages: [{ payload: 1 }] },
    obj([
      ["messages", [{ payload: 1 }]],
      ["__proto__", { polluted: true }],
    ]),
    obj([
      ["constructor", { prototype: { polluted: true } }],
      ["messages", [{ payload: 1 }]],
    ]),
    { messages: Array.from({ length: 1001 }, () => ({ payload: 1 })) },
    { messages: new Raw("1e400") },
  ];
  for (let i = 0; i < 120; i++) cases.push(post("enqueue: bad body", messages, json(pick(rnd, badBodies))));
  for (const raw of [
    "",
    "{",
    "{nope",
    '{"messages":[{"payload":1}]',
    '{"messages":[{"payload":1},]}',
    "[1,2",
    "nul",
    "'x'",
    '{"a":1}{"b":2}',
    "\u0000",
    '{"messages":[{"payload":NaN}]}',
    '{"messages":[{"payload":Infinity}]}',
    '{"messages":[{"payload":undefined}]}',
    '{"messages":[{"payload":01}]}',
    '{"messages":[{"payload":"\\x41"}]}',
    '{"messages":[{"payload":"\\ud800"}]',
    "\ufeff{}",
  ]) {
    cases.push(post("malformed JSON", messages, raw));
  }

  // Deep nesting: 10,000 (and 50,000) nested arrays or objects, in the payload and in every other field.
  const deep = [
    (d: number) => `{"messages":[{"payload":${nestedArrays(d)}}]}`,
    (d: number) => `{"messages":[{"payload":${nestedObjects(d)}}]}`,
    (d: number) => `{"messages":${nestedArrays(d, '{"payload":1}')}}`,
    (d: number) => `{"messages":[{"payload":1,"priority":${nestedArrays(d)}}]}`,
    (d: number) => `{"messages":[{"payload":1,"id":${nestedArrays(d, '"1"')}}]}`,
    (d: number) => nestedArrays(d),
    (d: number) => nestedObjects(d),
  ];
  for (let i = 0; i < 70; i++) cases.push(post("deep nesting", messages, pick(rnd, deep)(rnd() < 0.8 ? 10_000 : 50_000)));
  for (let i = 0; i < 10; i++) cases.push(post("deep nesting", ack, `{"ids":${nestedArrays(10_000, '"1000"')}}`));
  for (let i = 0; i < 10; i++) cases.push(post("deep nesting", postpone, `{"ids":["1000"],"delayMs":${nestedArrays(10_000)}}`));
  for (let i = 0; i < 10; i++)
    cases.push({
      category: "deep nesting",
      method: "PUT",
      path: table,
      headers: JSON_HEADERS,
      body: `{"ackWaitMs":${nestedArrays(10_000)}}`,
    });

  // Invalid UTF-8 bytes: in a payload string, in a payload key, in an id, in an unknown field.
  for (let i = 0; i < 150; i++) {
    const bad = Buffer.from(pick(rnd, UTF8_BAD));
    const [before, after] = pick(rnd, [
      ['{"messages":[{"payload":"a', 'b"}]}'],
      ['{"messages":[{"payload":{"', '":1}}]}'],
      ['{"messages":[{"payload":1,"id":"1', '"}]}'],
      ['{"messages":[{"payload":1,"', '":1}]}'],
    ] as const);
    cases.push(post("invalid UTF-8", messages, Buffer.concat([Buffer.from(before), bad, Buffer.from(after)])));
  }
  for (let i = 0; i < 30; i++) {
    const bad = Buffer.from(pick(rnd, UTF8_BAD));
    cases.push(post("invalid UTF-8", ack, Buffer.concat([Buffer.from('{"ids":["100'), bad, Buffer.from('"]}')])));
  }

  // Oversized bodies: over TABLEMQ_BODY_LIMIT_BYTES, with a content-length and chunked.
  for (let i = 0; i < 30; i++) {
    const size = BODY_LIMIT + 1 + Math.floor(rnd() * BODY_LIMIT);
    const body = `{"messages":[{"payload":"${"y".repeat(size)}"}]}`;
    cases.push({ ...post("oversized body", pick(rnd, [messages, ack, postpone]), body), chunked: rnd() < 0.5 });
  }
  for (let i = 0; i < 6; i++)
    cases.push({
      category: "oversized body",
      method: "PUT",
      path: table,
      headers: JSON_HEADERS,
      body: `{"ackWaitMs":${"1".repeat(BODY_LIMIT + 10)}}`,
    });

  // Ack and postpone: hostile ids (alone, or next to a real id that must not be acked), bad delays, extras.
  for (let i = 0; i < 300; i++) {
    const ids = rnd() < 0.5 ? [pick(rnd, BAD_IDS)] : [pick(rnd, SEEDED), pick(rnd, BAD_IDS), pick(rnd, SEEDED)];
    const which = Math.floor(rnd() * 6);
    if (which === 0) cases.push(post("hostile ids", ack, json({ ids: pick(rnd, [null, 1, "1000", {}, [], new Raw("1e400")]) })));
    else if (which === 1) cases.push(post("hostile ids", postpone, json({ ids: [pick(rnd, SEEDED)], delayMs: pick(rnd, BAD_DELAY) })));
    else if (which === 2)
      cases.push(
        post(
          "hostile ids",
          pick(rnd, [ack, postpone]),
          json(
            obj([
              ["ids", [pick(rnd, SEEDED)]],
              [
                pick(
                  rnd,
                  UNKNOWN_KEYS.filter((k) => k !== ""),
                ),
                1,
              ],
            ]),
          ),
        ),
      );
    else if (which === 3)
      cases.push(post("hostile ids", pick(rnd, [ack, postpone]), json({ ids: Array.from({ length: 1001 }, (_, j) => String(1000 + j)) })));
    else cases.push(post("hostile ids", pick(rnd, [ack, postpone]), json({ ids })));
  }

  // Receipts and extend: bad receipts (alone, or between real-looking ones that must not change), bad byMs,
  // missing or unknown fields. Dead letters: bad redrive bodies and list queries.
  const extend = `/v1/tables/${TARGET}/extend`;
  const good = () => `${pick(rnd, SEEDED)}:${Math.floor(rnd() * 3)}`;
  const badReceipts = () => (rnd() < 0.5 ? [pick(rnd, BAD_RECEIPTS)] : [good(), pick(rnd, BAD_RECEIPTS), good()]);
  const badExtend: Array<() => unknown> = [
    () => ({ receipts: badReceipts(), byMs: 1000 }),
    () => ({ receipts: [good()], byMs: pick(rnd, [...BAD_DELAY, 0]) }),
    () => ({ receipts: [good()] }),
    () => ({ byMs: 1000 }),
    () => ({ ids: [pick(rnd, SEEDED)], byMs: 1000 }),
    () => ({ receipts: [good()], byMs: 1000, delayMs: 5 }),
    () => ({ receipts: Array.from({ length: 1001 }, (_, j) => `${1000 + j}:0`), byMs: 1000 }),
  ];
  const badRedrive: unknown[] = [
    {},
    { all: false },
    { all: "yes" },
    { all: 1 },
    { ids: [] },
    { ids: ["1000"], all: true },
    { all: true, force: true },
    { ids: [pick(rnd, BAD_IDS)] },
    { ids: "1000" },
    { ids: Array.from({ length: 1001 }, (_, j) => String(1000 + j)) },
    [],
    null,
    "all",
  ];
  const badDead = [
    "limit=0",
    "limit=-1",
    "limit=abc",
    "limit=1001",
    "limit=1.5",
    "limit=",
    "cursor=x",
    "cursor=1:01",
    "cursor=:",
    "other=1",
    "limit=1&limit=2",
    "cursor=99999999999999999999999:1",
  ];
  for (let i = 0; i < 240; i++) {
    const which = Math.floor(rnd() * 5);
    if (which === 0) cases.push(post("receipts", pick(rnd, [ack, postpone]), json({ receipts: badReceipts() })));
    else if (which === 1)
      cases.push(post("receipts", pick(rnd, [ack, postpone]), json({ ids: [pick(rnd, SEEDED)], receipts: badReceipts() })));
    else if (which === 2) cases.push(post("extend", extend, json(pick(rnd, badExtend)())));
    else if (which === 3) cases.push(post("redrive", `/v1/tables/${TARGET}/redrive`, json(pick(rnd, badRedrive))));
    else cases.push({ category: "dead letters", method: "GET", path: `/v1/tables/${TARGET}/dead?${pick(rnd, badDead)}` });
  }

  // Browsing: bad queries (a valid one answers 200), and message ids that are bad or name no message.
  const badBrowse = [
    "state=acked",
    "state=",
    "state=READY",
    "state=ready&state=delayed",
    "order=oldest",
    "order=",
    "limit=0",
    "limit=1001",
    "limit=abc",
    "cursor=x",
    "cursor=1:01",
    "cursor=:",
    "cursor=-:1",
    "cursor=99999999999999999999:1",
    "cursor=9223372036854775808:1",
    "cursor=1:99999999999999999999",
    "order=newest&cursor=1:1000",
    "order=next&cursor=1000",
    "other=1",
  ];
  for (let i = 0; i < 80; i++) {
    const path =
      rnd() < 0.6
        ? `${messages}?${pick(rnd, badBrowse)}`
        : `${messages}/${encodeURIComponent(String(pick(rnd, [...BAD_IDS, "999", "18446744073709551615"])))}`;
    cases.push({ category: "browse", method: "GET", path });
  }

  // An operator's actions on one message, by ids that are bad or name no message: a 400 or a 404, nothing changes.
  for (let i = 0; i < 40; i++) {
    const id = encodeURIComponent(String(pick(rnd, [...BAD_IDS, "999", "18446744073709551615"])));
    cases.push(
      rnd() < 0.5
        ? { category: "message actions", method: "DELETE", path: `${messages}/${id}` }
        : { category: "message actions", method: "POST", path: `${messages}/${id}/deliver` },
    );
  }

  // Table options: wrong types, out of range, unknown names, inconsistent pairs; on the target and on a new name.
  const badOptions: unknown[] = [
    { ackWaitMs: 0 },
    { ackWaitMs: -1 },
    { ackWaitMs: "10" },
    { ackWaitMs: 1.5 },
    { ackWaitMs: new Raw("1e400") },
    { ackWaitMs: null },
    { ackWaitMs: MAX_DELAY_MS + 1 },
    { batchSize: 0 },
    { batchSize: 10_001 },
    { cacheSize: 0 },
    { batchSize: 50, cacheSize: 10 },
    { minBackoffMs: 5000, maxBackoffMs: 10 },
    { pollIntervalMs: 0 },
    { maxAttempts: -1 },
    { purgeAfterMs: true },
    { ackWait: 5 },
    { vt_ack_wait: 5 },
    obj([["__proto__", { ackWaitMs: 1 }]]),
    [],
    "x",
    1,
    null,
    { ackWaitMs: 1000, extra: 1 },
  ];
  for (let i = 0; i < 120; i++) {
    const path = rnd() < 0.5 ? table : `/v1/tables/fuzz_new_${i}`;
    cases.push({ category: "table options", method: "PUT", path, headers: JSON_HEADERS, body: json(pick(rnd, badOptions)) });
  }

  // Wrong content types (and none): a 400 naming the content type.
  const types = [
    "text/plain",
    "application/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "application/jsonx",
    "text/json",
    "application/json-patch+json",
    "image/png",
    "",
  ];
  for (let i = 0; i < 100; i++) {
    const type = pick(rnd, types);
    const path = pick(rnd, [messages, ack, postpone]);
    cases.push(post("wrong content type", path, json({ messages: [{ payload: 1 }] }), type ? { "content-type": type } : {}));
  }

  // Hostile table names on every route.
  cases.push(...tableCases(rnd, 450));

  // Unknown routes and methods.
  const routes: Array<[string, string]> = [
    ["PATCH", table],
    ["POST", table],
    ["DELETE", messages],
    ["PATCH", messages],
    ["PUT", ack],
    ["GET", "/v2/tables"],
    ["GET", "/v1"],
    ["GET", "/v1/tables/"],
    ["GET", "//v1//tables"],
    ["PATCH", `/v1/tables/${TARGET}/messages/1000`],
    ["GET", `/v1/tables/${TARGET}/messages/1000/deliver`],
    ["PUT", `/v1/tables/${TARGET}/purge`],
    ["OPTIONS", table],
    ["GET", "/healthz/../v1/tables/x"],
    ["GET", `/v1/tables/${TARGET}/subscribe`],
    ["POST", `/v1/tables/${TARGET}/subscribe`],
    ["GET", "/%"],
    ["GET", "/metrics/x"],
  ];
  for (let i = 0; i < 60; i++) {
    const [method, path] = pick(rnd, routes);
    cases.push({ category: "unknown route", method, path });
  }
  return cases;
}

// ------------------------------------------------------------------------------------------------
// Sending

interface Answer {
  status: number;
  contentType: string;
  body: string;
  error?: string;
}

function send(base: URL, c: Case, agent: http.Agent): Promise<Answer> {
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { ...c.headers };
    if (c.body !== undefined && !c.chunked) headers["content-length"] = Buffer.byteLength(c.body);
    const req = http.request(
      { host: base.hostname, port: base.port, method: c.method, path: c.path, headers, agent, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers["content-type"] ?? ""),
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on("error", (err) => resolve({ status: res.statusCode ?? 0, contentType: "", body: "", error: err.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer in 10 s")));
    req.on("error", (err) => resolve({ status: 0, contentType: "", body: "", error: (err as NodeJS.ErrnoException).code ?? err.message }));
    if (c.body !== undefined) req.end(c.body);
    else req.end();
  });
}

/** Why an answer breaks the contract, or undefined. */
function violation(a: Answer): string | undefined {
  if (a.status === 0) return `no answer (${a.error})`;
  const codes = ALLOWED[a.status];
  if (!codes) return `status ${a.status}`;
  if (!a.contentType.startsWith("application/json")) return `content-type ${JSON.stringify(a.contentType)}`;
  let body: any;
  try {
    body = JSON.parse(a.body);
  } catch {
    return "body is not JSON";
  }
  const e = body?.error;
  if (
    typeof e !== "object" ||
    e === null ||
    typeof e.code !== "string" ||
    typeof e.message !== "string" ||
    Object.keys(body).length !== 1
  ) {
    return "body is not {error: {code, message}}";
  }
  if (!codes.includes(e.code)) return `code ${e.code} with status ${a.status}`;
  return undefined;
}

async function runPool<T>(items: T[], concurrency: number, work: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i]!, i);
      }
    }),
  );
}

const preview = (b: Buffer | string | undefined) => {
  if (b === undefined) return undefined;
  const s = typeof b === "string" ? b : b.toString("latin1");
  return s.length > 160 ? `${s.slice(0, 120)}…(${s.length} chars)…${s.slice(-30)}` : s;
};

// ------------------------------------------------------------------------------------------------

describeWithDatabase("fault: bad input at scale (fuzz)", () => {
  const database = useOwnDatabase("faults_fuzz");
  let server: RunningServer;
  let store: MysqlStore;
  let base: URL;

  /** Everything a bad request could have changed. */
  const state = async () => {
    const { rows: tables } = await sql<{ name: string; comment: string }>`
      SELECT TABLE_NAME AS name, TABLE_COMMENT AS comment FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME`.execute(store.db);
    return {
      target: await tableChecksum(store.db, TARGET),
      targetWs: await tableChecksum(store.db, TARGET_WS),
      tables: tables.map((t) => `${t.name}:${t.comment}`),
    };
  };

  /** A well-behaved subscriber on another table, fed one message every 50 ms while `work` runs. */
  async function withControl(work: () => Promise<void>): Promise<{ sent: number; received: number }> {
    const confirmed = new Set<string>();
    const control = await new Consumer(base.origin, CONTROL, "control", { confirmed }).ready();
    const ids: string[] = [];
    let running = true;
    const feeder = (async () => {
      for (let i = 0; running && i < 2_000; i++) {
        const res = await request(base.origin, "POST", `/v1/tables/${CONTROL}/messages`, { messages: [{ payload: i }] });
        if (res.status === 201) ids.push(...(res.body.ids as string[]));
        await sleep(50);
      }
    })();
    try {
      await work();
    } finally {
      running = false;
      await feeder;
    }
    await waitUntil(() => ids.every((id) => confirmed.has(id)), "the control subscriber to get and ack everything", 10_000);
    control.close();
    return { sent: ids.length, received: new Set(control.received).size };
  }

  beforeAll(async () => {
    server = await startTestServer(database.url, { bodyLimitBytes: BODY_LIMIT, maxPayloadBytes: MAX_PAYLOAD });
    base = new URL(server.url);
    store = createMysqlStore(database.url, { connectionLimit: 2 });
    expect((await request(server.url, "PUT", `/v1/tables/${TARGET}`, {})).status).toBe(201);
    expect((await request(server.url, "PUT", `/v1/tables/${TARGET_WS}`, {})).status).toBe(201);
    expect((await request(server.url, "PUT", `/v1/tables/${CONTROL}`, { ackWaitMs: 2_000, pollIntervalMs: 200 })).status).toBe(201);
    for (const table of [TARGET, TARGET_WS]) {
      const seeded = await request(server.url, "POST", `/v1/tables/${table}/messages`, {
        messages: SEEDED.map((id, i) => ({ id, priority: i % 256, delayMs: 3_600_000, payload: { seeded: i, text: "ünïcødé ☃" } })),
      });
      expect(seeded.status).toBe(201);
    }
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  it(`HTTP: ~2000 malformed requests (seed ${SEED}) get docs/API.md 4xx errors; nothing changes; the server keeps serving`, async () => {
    const cases = httpCases(SEED);
    const before = await state();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const found: Array<{ category: string; method: string; path: string; body?: string; status: number; answer: string; why: string }> = [];
    const statuses: Record<string, number> = {};
    const byCategory: Record<string, Record<number, number>> = {};
    const started = Date.now();
    const control = await withControl(() =>
      runPool(cases, 8, async (c) => {
        const a = await send(base, c, agent);
        statuses[a.status] = (statuses[a.status] ?? 0) + 1;
        const seen = (byCategory[c.category] ??= {});
        seen[a.status] = (seen[a.status] ?? 0) + 1;
        const why = violation(a);
        if (why)
          found.push({
            category: c.category,
            method: c.method,
            path: preview(c.path)!,
            body: preview(c.body),
            status: a.status,
            answer: preview(a.body)!,
            why,
          });
      }),
    );
    agent.destroy();
    const after = await state();
    const health = await request(server.url, "GET", "/healthz");

    // Distinct findings, one example each: the same category, status and reason.
    const distinct = new Map<string, (typeof found)[number] & { count: number }>();
    for (const f of found) {
      const key = `${f.category} | ${f.status} | ${f.why}`;
      const seen = distinct.get(key);
      if (seen) seen.count++;
      else distinct.set(key, { ...f, count: 1 });
    }
    recordFigures("fuzz-http", {
      seed: SEED,
      requests: cases.length,
      byCategory,
      statuses,
      violations: found.length,
      distinctViolations: [...distinct.values()].map(({ category, method, path, body, status, answer, why, count }) => ({
        category,
        why,
        count,
        status,
        method,
        path,
        body,
        answer,
      })),
      durationMs: Date.now() - started,
      controlSent: control.sent,
      controlReceived: control.received,
      targetUnchanged: after.target === before.target,
      tablesUnchanged: JSON.stringify(after.tables) === JSON.stringify(before.tables),
    });

    expect(cases.length).toBeGreaterThanOrEqual(1_900);
    expect(health.status).toBe(200);
    expect(after.target, "the target table's rows are unchanged").toBe(before.target);
    expect(after.tables, "no table created, dropped or altered").toEqual(before.tables);
    expect(
      [...distinct.values()].map(
        (f) => `${f.category}: ${f.method} ${f.path} ${f.body ?? ""} -> ${f.status} ${f.answer} (${f.why}; ${f.count}x)`,
      ),
    ).toEqual([]);
  }, 120_000);

  describe("WebSocket", () => {
    type Frame = { kind: string; data: string | Buffer; binary?: boolean };

    function badFrames(seed: number): Frame[] {
      const rnd = prng(seed);
      const frames: Frame[] = [];
      const malformed = [
        "",
        "{",
        "nope",
        '{"type":',
        "[",
        "\u0000",
        "NaN",
        "undefined",
        "{'type':'ack'}",
        '{"type":"ack","ids":["1000"],}',
        "\ufeff{}",
      ];
      const notObject = ["1", '"ack"', "null", "true", "[]", '[{"type":"ack","ids":["1000"]}]', nestedArrays(10_000)];
      const kinds = [
        () => ({ kind: "malformed JSON", data: pick(rnd, malformed) }),
        () => ({ kind: "not an object", data: pick(rnd, notObject) }),
        () => ({
          kind: "wrong type",
          data: json({ type: pick(rnd, ["nack", "ACK", "Ack", 1, null, ["ack"], "", "subscribe", "messages"]), ids: [pick(rnd, SEEDED)] }),
        }),
        () => ({ kind: "no type", data: json({ ids: [pick(rnd, SEEDED)] }) }),
        () => ({
          kind: "bad ids",
          data: json({
            type: pick(rnd, ["ack", "postpone"]),
            ids: rnd() < 0.3 ? pick(rnd, [null, 1, "1000", {}, [], undefined]) : [pick(rnd, SEEDED), pick(rnd, BAD_IDS)],
          }),
        }),
        () => ({ kind: "too many ids", data: json({ type: "ack", ids: Array.from({ length: 1001 }, (_, j) => String(1000 + j)) }) }),
        () => ({
          kind: "unknown field",
          data: json(
            obj([
              ["type", "ack"],
              ["ids", [pick(rnd, SEEDED)]],
              [pick(rnd, ["delayMs", "extra", "__proto__", "Type", "payload"]), 5],
            ]),
          ),
        }),
        () => ({ kind: "bad delay", data: json({ type: "postpone", ids: [pick(rnd, SEEDED)], delayMs: pick(rnd, BAD_DELAY) }) }),
        () => ({
          kind: "bad ref",
          data: json({
            type: "ack",
            ids: [pick(rnd, SEEDED)],
            ref: pick(rnd, ["r".repeat(65), 1.5, {}, [], true, null, new Raw("9007199254740993"), new Raw("1e400")]),
          }),
        }),
        () => ({ kind: "deep nesting", data: `{"type":"ack","ids":${nestedArrays(10_000, '"1000"')}}` }),
        () => ({ kind: "binary frame", data: Buffer.from(json({ type: "ack", ids: [pick(rnd, SEEDED)] })), binary: true }),
        () => ({
          kind: "bad receipts",
          data: json({
            type: pick(rnd, ["ack", "postpone", "extend"]),
            receipts: [`${pick(rnd, SEEDED)}:1`, pick(rnd, BAD_RECEIPTS)],
            byMs: 1000,
          }),
        }),
        () => ({
          kind: "bad extend",
          data: json(
            pick(rnd, [
              { type: "extend", receipts: [`${pick(rnd, SEEDED)}:1`] },
              { type: "extend", ids: [pick(rnd, SEEDED)], byMs: 5 },
              { type: "extend", receipts: [`${pick(rnd, SEEDED)}:1`], byMs: pick(rnd, [...BAD_DELAY, 0]) },
              { type: "ack", receipts: [`${pick(rnd, SEEDED)}:1`], byMs: 5 },
            ]),
          ),
        }),
      ];
      for (let i = 0; i < 960; i++) frames.push(pick(rnd, kinds)());
      return frames;
    }

    /** Sends frames one at a time on one socket; each must be answered by an error frame. */
    async function session(frames: Frame[]) {
      const ws = new WebSocket(`${base.origin.replace(/^http/, "ws")}/v1/tables/${TARGET_WS}/subscribe`);
      const replies: any[] = [];
      let closeCode: number | undefined;
      ws.on("message", (d) => replies.push(JSON.parse(d.toString())));
      ws.on("close", (code) => (closeCode = code));
      ws.on("error", () => {});
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("unexpected-response", () => reject(new Error("upgrade refused")));
      });
      await waitUntil(() => replies.some((r) => r.type === "subscribed"), "subscribed");
      const unanswered: Frame[] = [];
      for (const f of frames) {
        if (closeCode !== undefined) {
          unanswered.push({ ...f, kind: `${f.kind} (socket already closed ${closeCode})` });
          continue;
        }
        const errorsBefore = replies.filter((r) => r.type === "error").length;
        ws.send(f.data, { binary: f.binary ?? false });
        const answered = await waitUntil(
          () => replies.filter((r) => r.type === "error").length > errorsBefore || closeCode !== undefined,
          "an error frame",
          3_000,
        ).then(
          () => true,
          () => false,
        );
        if (!answered) unanswered.push(f);
      }
      await waitUntil(() => closeCode !== undefined, "the close", 2_000).catch(() => {});
      const errors = replies.filter((r) => r.type === "error");
      const wrong = errors.filter(
        (e) => typeof e.code !== "string" || typeof e.message !== "string" || !["bad_request", "validation_failed"].includes(e.code),
      );
      const unexpected = replies.filter((r) => !["subscribed", "error"].includes(r.type));
      if (closeCode === undefined) ws.terminate();
      return {
        errors: errors.length,
        wrong,
        unexpected,
        unanswered,
        closeCode,
        sent: frames.map((f) => preview(typeof f.data === "string" ? f.data : f.data.toString())),
      };
    }

    it(`~1000 bad frames (seed ${SEED + 1}): an error frame each, close 1008 at the 10th; nothing changes; others keep being served`, async () => {
      const frames = badFrames(SEED + 1);
      const before = await state();
      const results: Array<Awaited<ReturnType<typeof session>> & { kinds: string[] }> = [];
      const control = await withControl(async () => {
        const sessions = Array.from({ length: frames.length / 10 }, (_, i) => frames.slice(i * 10, i * 10 + 10));
        await runPool(sessions, 4, async (s) => void results.push({ ...(await session(s)), kinds: s.map((f) => f.kind) }));
      });
      // Protocol-level violations, closed by the WebSocket layer: invalid UTF-8 text and a frame over the limit.
      const protocol: Array<{ kind: string; closeCode: number | undefined }> = [];
      for (let i = 0; i < 20; i++) {
        const ws = new WebSocket(`${base.origin.replace(/^http/, "ws")}/v1/tables/${TARGET_WS}/subscribe`);
        ws.on("error", () => {});
        let closeCode: number | undefined;
        ws.on("close", (code) => (closeCode = code));
        await new Promise<void>((resolve) => ws.once("open", () => resolve()));
        const kind = i % 2 === 0 ? "invalid UTF-8 text" : "frame over the size limit";
        if (i % 2 === 0) ws.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
        else ws.send(`{"type":"ack","ids":["${"1".repeat(BODY_LIMIT + 10)}"]}`);
        await waitUntil(() => closeCode !== undefined, "the close", 3_000).catch(() => ws.terminate());
        protocol.push({ kind, closeCode });
      }
      const after = await state();
      const health = await request(server.url, "GET", "/healthz");

      const notClosed = results.filter((r) => r.closeCode !== 1008);
      const unanswered = results.flatMap((r) =>
        r.unanswered.map((f) => ({ kind: f.kind, frame: preview(typeof f.data === "string" ? f.data : f.data.toString()) })),
      );
      const distinctUnanswered = new Map(unanswered.map((u) => [`${u.kind}: ${u.frame}`, u]));
      recordFigures("fuzz-ws", {
        seed: SEED + 1,
        frames: frames.length + protocol.length,
        sessions: results.length,
        errorFrames: results.reduce((n, r) => n + r.errors, 0),
        closedWith1008: results.filter((r) => r.closeCode === 1008).length,
        notClosedWith1008: notClosed.length,
        notClosedExamples: notClosed.slice(0, 3).map((r) => ({ closeCode: r.closeCode, errors: r.errors, frames: r.sent })),
        unansweredFrames: [...distinctUnanswered.keys()],
        protocolCloses: protocol.reduce<Record<string, number>>(
          (m, p) => ((m[`${p.kind}: ${p.closeCode}`] = (m[`${p.kind}: ${p.closeCode}`] ?? 0) + 1), m),
          {},
        ),
        controlSent: control.sent,
        controlReceived: control.received,
        targetUnchanged: after.targetWs === before.targetWs,
      });

      expect(health.status).toBe(200);
      expect(after.targetWs, "the target table's rows are unchanged").toBe(before.targetWs);
      expect(after.tables).toEqual(before.tables);
      expect([...distinctUnanswered.keys()], "every bad frame is answered with an error frame").toEqual([]);
      expect(results.flatMap((r) => r.wrong)).toEqual([]);
      expect(results.flatMap((r) => r.unexpected)).toEqual([]);
      expect(
        notClosed.map((r) => ({ closeCode: r.closeCode, errors: r.errors, kinds: r.kinds })),
        "closed with 1008 after 10 bad frames",
      ).toEqual([]);
      for (const p of protocol) expect(p.closeCode, p.kind).toBe(p.kind === "invalid UTF-8 text" ? 1007 : 1009);
    }, 120_000);
  });
});
