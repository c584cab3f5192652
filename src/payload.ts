/**
 * The rules for a payload's JSON text, in one place: what the server stores is the text the producer sent,
 * byte for byte (never parsed and re-serialised, which would round 9007199254740993, turn 1e400 into null
 * and -0 into 0), so the text itself is checked against what the message column accepts.
 *
 * MariaDB's JSON column is LONGTEXT with a JSON_VALID CHECK, which refuses two things that JSON.parse takes:
 * documents nested 32 levels deep or more, and a `\uXXXX` escape of a lone UTF-16 surrogate (a high one not
 * followed by a low one, or a low one on its own). A lone surrogate cannot arrive as raw text: request
 * bodies must be valid UTF-8. Both are found here, before the row goes into a shared INSERT.
 */

/** MariaDB's JSON_VALID (the column's CHECK) refuses documents nested 32 levels deep or more. */
export const MAX_PAYLOAD_DEPTH = 31;

/** What `scanValue` found of one JSON value. */
export interface ScannedValue {
  /** Index just after the value. */
  end: number;
  /** Deepest nesting of arrays and objects (0 for a scalar). */
  depth: number;
  /** Index of the first `\u` escape of a lone surrogate, or -1. */
  loneSurrogateAt: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;
const COLON = 0x3a;

export function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export function skipSpace(text: string, i: number): number {
  while (i < text.length && isJsonSpace(text.charCodeAt(i))) i++;
  return i;
}

/**
 * Walks one value of text that JSON.parse accepted, starting at `start` (no leading space). Strings are
 * skipped with indexOf, so the cost follows the number of tokens more than the number of characters.
 */
export function scanValue(text: string, start: number): ScannedValue {
  let depth = 0;
  let deepest = 0;
  let lone = -1;
  let i = start;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const close = stringEnd(text, i);
      if (lone < 0) lone = loneSurrogate(text, i + 1, close);
      i = close + 1;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > deepest) deepest = depth;
      i++;
      continue;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
      i++;
    } else if (c === COMMA || c === COLON || isJsonSpace(c)) {
      i++;
      continue;
    } else {
      // A number or a literal: up to the next delimiter.
      while (i < text.length && !isDelimiter(text.charCodeAt(i))) i++;
    }
    if (depth === 0) break;
  }
  return { end: i, depth: deepest, loneSurrogateAt: lone };
}

function isDelimiter(c: number): boolean {
  return c === COMMA || c === CLOSE_BRACKET || c === CLOSE_BRACE || c === COLON || isJsonSpace(c);
}

/** Index of the quote that closes the string opening at `open`. */
export function stringEnd(text: string, open: number): number {
  let from = open + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return text.length;
    let backslashes = 0;
    for (let j = q - 1; j > open && text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return q;
    from = q + 1;
  }
}

/** The index of the first escape of a lone surrogate in the string body [from, to), or -1. */
function loneSurrogate(text: string, from: number, to: number): number {
  let i = text.indexOf("\\", from);
  while (i >= 0 && i < to) {
    if (text.charCodeAt(i + 1) !== 0x75 /* u */) {
      i = text.indexOf("\\", i + 2);
      continue;
    }
    const unit = parseInt(text.slice(i + 2, i + 6), 16);
    if (unit >= 0xdc00 && unit <= 0xdfff) return i;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 6) === BACKSLASH && text.charCodeAt(i + 7) === 0x75 ? parseInt(text.slice(i + 8, i + 12), 16) : -1;
      if (!(next >= 0xdc00 && next <= 0xdfff)) return i;
      i = text.indexOf("\\", i + 12);
      continue;
    }
    i = text.indexOf("\\", i + 6);
  }
  return -1;
}

/**
 * Why the column would refuse this payload text (valid JSON), or undefined when it would not. The message
 * names no field: callers prefix it (`messages[3].payload: ...`).
 */
export function payloadProblem(scanned: ScannedValue, text: string): string | undefined {
  if (scanned.depth > MAX_PAYLOAD_DEPTH) return `nested deeper than ${MAX_PAYLOAD_DEPTH} levels`;
  if (scanned.loneSurrogateAt >= 0) {
    const escape = text.slice(scanned.loneSurrogateAt, scanned.loneSurrogateAt + 6);
    return `contains ${escape}, a lone UTF-16 surrogate (not a Unicode character; the JSON column refuses it)`;
  }
  return undefined;
}

/** Checks a whole payload text (valid JSON): its problem, or undefined. */
export function checkPayloadText(text: string): string | undefined {
  const start = skipSpace(text, 0);
  return payloadProblem(scanValue(text, start), text);
}

/**
 * The bytes a payload is counted as in memory (the cache budget, a poll's byte bound): its text's length in
 * UTF-16 code units, which is what V8 keeps of an ASCII text, and at most its UTF-8 size.
 */
export function payloadBytes(payload: string): number {
  return payload.length;
}
