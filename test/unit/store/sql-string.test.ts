import { escape } from "mysql2";
import { describe, expect, it } from "vitest";
import { sqlString } from "../../../src/store/mysql/values.js";

/** A pseudo-random string over every character the escape treats specially, plus plain and multibyte ones. */
function randomString(seed: number): string {
  const alphabet = ["\0", "\b", "\t", "\n", "\r", "\x1a", "'", '"', "\\", "a", "?", "-", " ", "é", "😀", "\u2028", "%", "_"];
  let x = seed;
  let out = "";
  const length = seed % 40;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out += alphabet[x % alphabet.length];
  }
  return out;
}

describe("sqlString", () => {
  it("writes what mysql2's escape writes, with double quotes left unescaped", () => {
    for (let seed = 0; seed < 5_000; seed++) {
      const s = randomString(seed);
      expect(sqlString(s)).toBe(escape(s).replaceAll('\\"', '"'));
    }
  });

  it("quotes and escapes each special character", () => {
    expect(sqlString(`it's a \\ "q" \0\n\r\b\t\x1a`)).toBe(`'it\\'s a \\\\ "q" \\0\\n\\r\\b\\t\\Z'`);
    expect(sqlString('{"a":"b"}')).toBe(`'{"a":"b"}'`);
    expect(sqlString("")).toBe("''");
  });

  it("cannot be closed early by the value", () => {
    // Every quote in the output is escaped except the two that delimit it.
    for (const attack of ["'; DROP TABLE t; --", "\\'; DROP TABLE t; --", "\\\\'", "'''"]) {
      const lit = sqlString(attack);
      const body = lit.slice(1, -1);
      let i = 0;
      while (i < body.length) {
        if (body[i] === "\\") i += 2;
        else {
          expect(body[i]).not.toBe("'");
          i++;
        }
      }
    }
  });
});
