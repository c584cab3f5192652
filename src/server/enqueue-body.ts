/**
 * The payloads of an enqueue body as the producer wrote them. The body is parsed by JSON.parse (and then
 * validated by the route's schema) for everything else; this walk finds the text of each
 * `messages[i].payload`, so the payload is stored and delivered byte for byte, never re-serialised.
 */
import { type ScannedValue, scanValue, skipSpace, stringEnd } from "../payload.js";

/** A payload's text and what the scan found of it. */
export interface PayloadText {
  text: string;
  scanned: ScannedValue;
}

/**
 * One entry per element of the top-level `messages` array (undefined where an element is not an object
 * with a payload). `body` must be text JSON.parse accepted. As JSON.parse does, a key given twice counts
 * its last value.
 */
export function payloadTexts(body: string): Array<PayloadText | undefined> {
  let found: Array<PayloadText | undefined> = [];
  walkObject(body, skipSpace(body, 0), (key, at) => {
    if (key !== "messages" || body.charCodeAt(at) !== 0x5b /* [ */) return undefined;
    const { end, items } = walkMessages(body, at);
    found = items;
    return end;
  });
  return found;
}

/**
 * Walks the object at `open`, calling `onValue` with each key and the index of its value; `onValue` returns
 * the index after the value when it walked it, or undefined to have it skipped. Returns the index after the
 * object (or `open` itself when there is no object there).
 */
function walkObject(text: string, open: number, onValue: (key: string, at: number) => number | undefined): number {
  if (text.charCodeAt(open) !== 0x7b /* { */) return open;
  let i = skipSpace(text, open + 1);
  while (i < text.length && text.charCodeAt(i) === 0x22 /* " */) {
    const close = stringEnd(text, i);
    const raw = text.slice(i + 1, close);
    const key = raw.includes("\\") ? (JSON.parse(text.slice(i, close + 1)) as string) : raw;
    i = skipSpace(text, skipSpace(text, close + 1) + 1); // past the colon
    i = onValue(key, i) ?? scanValue(text, i).end;
    i = skipSpace(text, i);
    if (text.charCodeAt(i) === 0x2c /* , */) i = skipSpace(text, i + 1);
  }
  return skipSpace(text, i) + 1; // past the closing brace
}

function walkMessages(text: string, open: number): { end: number; items: Array<PayloadText | undefined> } {
  const items: Array<PayloadText | undefined> = [];
  let i = skipSpace(text, open + 1);
  while (i < text.length && text.charCodeAt(i) !== 0x5d /* ] */) {
    let payload: PayloadText | undefined;
    if (text.charCodeAt(i) === 0x7b) {
      i = walkObject(text, i, (key, at) => {
        if (key !== "payload") return undefined;
        const scanned = scanValue(text, at);
        const lone = scanned.loneSurrogateAt;
        // Indices into the payload's own text.
        payload = {
          text: text.slice(at, scanned.end),
          scanned: { ...scanned, end: scanned.end - at, loneSurrogateAt: lone < 0 ? lone : lone - at },
        };
        return scanned.end;
      });
    } else {
      i = scanValue(text, i).end;
    }
    items.push(payload);
    i = skipSpace(text, i);
    if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
  }
  return { end: i + 1, items };
}
