import { describe, expect, it } from "vitest";
import { DEFAULT_OPTIONS, formatComment, isMessageComment, OptionsError, parseComment, resolveOptions } from "../../src/options.js";

describe("table options", () => {
  it("defaults minBackoff to ackWait, like the API says", () => {
    expect(resolveOptions({ ackWaitMs: 5_000 }).minBackoffMs).toBe(5_000);
    expect(resolveOptions({})).toEqual(DEFAULT_OPTIONS);
  });

  it("writes Vitess's comment format in seconds and reads it back", () => {
    const opts = resolveOptions({ ackWaitMs: 500, purgeAfterMs: 120_000, batchSize: 3, pollIntervalMs: 1_500 });
    const comment = formatComment(opts);
    expect(comment).toBe(
      "vitess_message,vt_ack_wait=0.5,vt_purge_after=120,vt_batch_size=3,vt_cache_size=10000,vt_poller_interval=1.5,vt_min_backoff=0.5,vt_max_backoff=0",
    );
    expect(parseComment(comment)).toEqual(opts);
  });

  it("keeps maxAttempts out of the comment unless set", () => {
    expect(formatComment(resolveOptions({}))).not.toContain("vt_max_attempts");
    expect(parseComment(formatComment(resolveOptions({ maxAttempts: 5 }))).maxAttempts).toBe(5);
  });

  it("keeps paused out of the comment unless the table is paused, and reads it back", () => {
    expect(formatComment(resolveOptions({}))).not.toContain("vt_paused");
    const comment = formatComment(resolveOptions({ paused: true }));
    expect(comment).toMatch(/,vt_paused=1$/);
    expect(parseComment(comment).paused).toBe(true);
    expect(parseComment("vitess_message,vt_paused=0").paused).toBe(false);
    expect(() => resolveOptions({ paused: "yes" as never })).toThrow(/paused/);
  });

  it("reads hand-written comments with spaces and unknown keys", () => {
    expect(isMessageComment(" vitess_message , vt_ack_wait=30")).toBe(true);
    expect(isMessageComment("vitess_messages")).toBe(false);
    expect(isMessageComment("")).toBe(false);
    const opts = parseComment(
      "vitess_message, vt_ack_wait=30, vt_purge_after=120, vt_batch_size=1, vt_cache_size=10, vt_poller_interval=30, vt_future_thing=1",
    );
    expect(opts).toMatchObject({ ackWaitMs: 30_000, purgeAfterMs: 120_000, batchSize: 1, cacheSize: 10, minBackoffMs: 30_000 });
  });

  it("names the field of a bad value", () => {
    expect(() => parseComment("vitess_message,vt_ack_wait=abc")).toThrow(OptionsError);
    expect(() => resolveOptions({ batchSize: 0 })).toThrow(/batchSize/);
    expect(() => resolveOptions({ batchSize: 1.5 })).toThrow(/batchSize/);
    expect(() => resolveOptions({ ackWaitMs: -1 })).toThrow(/ackWaitMs/);
    expect(() => resolveOptions({ minBackoffMs: 10_000, maxBackoffMs: 5_000 })).toThrow(/maxBackoffMs/);
    expect(() => resolveOptions({ batchSize: 20, cacheSize: 10 })).toThrow(/batchSize/);
  });
});
