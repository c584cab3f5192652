import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkPayloadText, MAX_PAYLOAD_DEPTH, scanValue } from "../../src/payload.js";
import { payloadTexts } from "../../src/server/enqueue-body.js";

const arrays = (n: number) => "[".repeat(n) + "]".repeat(n);
const objects = (n: number) => '{"a":'.repeat(n) + "1" + "}".repeat(n);

describe("payload text rules (what MariaDB's JSON column refuses)", () => {
  it("refuses nesting deeper than MAX_PAYLOAD_DEPTH, counting arrays and objects alike", () => {
    expect(checkPayloadText(arrays(MAX_PAYLOAD_DEPTH))).toBeUndefined();
    expect(checkPayloadText(arrays(MAX_PAYLOAD_DEPTH + 1))).toMatch(/nested deeper than 31 levels/);
    expect(checkPayloadText(objects(MAX_PAYLOAD_DEPTH))).toBeUndefined();
    expect(checkPayloadText(objects(MAX_PAYLOAD_DEPTH + 1))).toMatch(/nested deeper/);
    expect(checkPayloadText(`{"a":1,"b":[1,2],"c":{"d":${arrays(MAX_PAYLOAD_DEPTH - 2)}}}`)).toBeUndefined();
    expect(checkPayloadText(`{"a":1,"b":[1,2],"c":{"d":${arrays(MAX_PAYLOAD_DEPTH - 1)}}}`)).toMatch(/nested deeper/);
    // Brackets inside strings do not nest.
    expect(checkPayloadText(JSON.stringify({ s: arrays(100) }))).toBeUndefined();
  });

  it("walks a 100,000-deep document without growing the stack", () => {
    expect(checkPayloadText(arrays(100_000))).toMatch(/nested deeper/);
  });

  it("refuses escapes of lone surrogates, high or low, and accepts pairs", () => {
    for (const text of ['"lone \\ud800"', '"\\udc00"', '"\\ud800x"', '"\\ud800\\u0041"', '"\\udc00\\ud800"', '["ok", {"k": "\\uDBFF"}]']) {
      expect(checkPayloadText(text), text).toMatch(/lone UTF-16 surrogate/);
    }
    for (const text of ['"\\ud83d\\ude00"', '"\\uD800\\uDC00"', '"\\u00e9 \\n \\\\ud800"', '"😀"', '{"\\ud83d\\ude00": 1}']) {
      expect(checkPayloadText(text), text).toBeUndefined();
    }
  });

  it("names the escape it refuses", () => {
    expect(checkPayloadText('{"a":"x\\uD83Dy"}')).toContain("\\uD83D");
  });

  it("finds the end of any JSON value JSON.stringify can write, with any spacing", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 1, 2, "\t"), (value, space) => {
        const text = JSON.stringify(value, null, space);
        expect(scanValue(`${text} ,"rest"`, 0).end).toBe(text.length);
      }),
      { numRuns: 300 },
    );
  });
});

describe("payloadTexts: each message's payload as the producer wrote it", () => {
  it("keeps numbers, escapes and spacing exactly", () => {
    const payloads = [
      "9007199254740993",
      "18446744073709551615",
      "1e400",
      "-0",
      "1.0",
      '{"b":1, "a" : [ 1.50 , "\\u00e9" ] }',
      '"\\ud83d\\ude00"',
      "null",
    ];
    const body = `{"messages":[${payloads.map((p, i) => `{"id":"${i}","payload":${p},"priority":1}`).join(" , ")}]}`;
    expect(payloadTexts(body).map((p) => p?.text)).toEqual(payloads);
  });

  it("follows JSON.parse for escaped keys, repeated keys and other top-level fields", () => {
    const body =
      ' { "x" : {"messages":[{"payload":0}]}, "mess\\u0061ges" :\n[ {"payload":1,"pay\\u006coad":[2]}, {"payload" : {"payload":3}} ] } ';
    expect(payloadTexts(body).map((p) => p?.text)).toEqual(["[2]", '{"payload":3}']);
    expect(JSON.parse(body).messages[0].payload).toEqual([2]);
  });

  it("leaves an entry undefined where an element has no payload", () => {
    expect(payloadTexts('{"messages":[{"id":"1"}, 5, {"payload":"p"}]}').map((p) => p?.text)).toEqual([undefined, undefined, '"p"']);
  });

  it("agrees with JSON.parse on every payload of random bodies", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ payload: fc.jsonValue(), priority: fc.option(fc.nat(255), { nil: undefined }) })),
        fc.constantFrom(undefined, 1),
        (messages, space) => {
          const body = JSON.stringify({ messages }, null, space);
          const texts = payloadTexts(body);
          expect(texts.map((t) => JSON.parse(t!.text))).toEqual(JSON.parse(body).messages.map((m: { payload: unknown }) => m.payload));
        },
      ),
      { numRuns: 300 },
    );
  });
});
