/** Flag parsing shared by the commands: whole numbers, server URLs, and table options from their flags. */
import { InvalidArgumentError, Option } from "commander";
import type { TableOptions } from "../client/types.js";

/** A commander argument parser for a whole number in [min, max]; the error names the range. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (raw: string) => number {
  return (raw) => {
    const text = raw.trim();
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER ? `expected a whole number >= ${min}.` : `expected a whole number from ${min} to ${max}.`,
      );
    }
    return n;
  };
}

/**
 * `--url` (and TABLEMQ_URL): one server URL, or several nodes' separated by commas
 * (`http://mq-1:8080,http://mq-2:8080`), for the client's `url` option; blanks around each are dropped.
 * An empty list is left for the client to refuse, naming the flag (clientFor).
 */
export function serverUrls(raw: string): string[] {
  return raw
    .split(",")
    .map((url) => url.trim())
    .filter((url) => url !== "");
}

/** Every table option as a flag: `ackWaitMs` is `--ack-wait-ms <ms>`. */
export const TABLE_OPTION_FLAGS: ReadonlyArray<{ key: Exclude<keyof TableOptions, "paused">; flag: string; min: number; help: string }> = [
  { key: "ackWaitMs", flag: "--ack-wait-ms", min: 1, help: "how long a delivered message waits for its ack (default 30000)" },
  { key: "minBackoffMs", flag: "--min-backoff-ms", min: 0, help: "smallest redelivery backoff (default: ack wait)" },
  { key: "maxBackoffMs", flag: "--max-backoff-ms", min: 0, help: "largest redelivery backoff, 0 = unbounded (default 0)" },
  { key: "purgeAfterMs", flag: "--purge-after-ms", min: 0, help: "delete acked messages after this long (default 86400000)" },
  { key: "batchSize", flag: "--batch-size", min: 1, help: "most messages in one delivery (default 10)" },
  { key: "cacheSize", flag: "--cache-size", min: 1, help: "most messages held in memory (default 10000)" },
  { key: "pollIntervalMs", flag: "--poll-interval-ms", min: 1, help: "how often the table is read for due messages (default 30000)" },
  {
    key: "maxAttempts",
    flag: "--max-attempts",
    min: 0,
    help: "deliveries without an ack before a message moves to <table>_dlq, 0 = unlimited (default 0)",
  },
];

/** The commander options for TABLE_OPTION_FLAGS; their attribute names are the option keys. */
export function tableOptionFlags(): Option[] {
  return TABLE_OPTION_FLAGS.map(({ flag, min, help }) => new Option(`${flag} <n>`, help).argParser(wholeNumber(min)));
}

/** Picks the table options out of parsed flags; absent flags are left out (the server keeps or defaults them). */
export function tableOptionsFromFlags(flags: Record<string, unknown>): Partial<TableOptions> {
  const options: Partial<TableOptions> = {};
  for (const { key } of TABLE_OPTION_FLAGS) {
    const v = flags[key];
    if (typeof v === "number") options[key] = v;
  }
  return options;
}
