/**
 * The heartbeat of callback mode (`autoExtend`): while a handler runs, its message's lease is extended
 * every `everyMs` by `byMs`, so a handler that runs longer than the table's ack wait does not see its
 * message delivered again elsewhere. Beats are counted from the message's arrival (its lease started
 * then), so a message that waited for a free handler is extended at once when it is overdue. The next beat
 * is scheduled when a beat is answered, so beats never pile up behind a slow server.
 *
 * The heartbeat stops when it is stopped (the handler settled), when the answer is stale (the message was
 * delivered again since: the `stale` hook), or when the message is gone (acked). A failed beat (server
 * unreachable) is reported and the next one is tried as usual.
 */
import { checkWhole, invalidArgument } from "./http.js";
import type { ReceivedMessage } from "./message.js";

export interface AutoExtendOptions {
  /** How often the lease is extended; default half the table's ack wait. Keep it well under the ack wait. */
  everyMs?: number;
  /** How far from now each extension reaches; default the larger of the ack wait and twice `everyMs`. */
  byMs?: number;
}

export interface LeaseTimes {
  everyMs: number;
  byMs: number;
}

export interface HeartbeatHooks {
  /** The message was delivered again since this delivery: the heartbeat has stopped. */
  stale(): void;
  /** A beat failed (e.g. the server is unreachable); the heartbeat goes on. */
  error(error: Error): void;
}

/** Validates the `autoExtend` option; undefined when it is off. */
export function checkAutoExtend(option: boolean | AutoExtendOptions | undefined): AutoExtendOptions | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return {};
  for (const key of ["everyMs", "byMs"] as const) checkWhole(`autoExtend.${key}`, option[key], 1, true);
  if (option.everyMs !== undefined && option.byMs !== undefined && option.everyMs >= option.byMs) {
    throw invalidArgument(
      "autoExtend.everyMs",
      `(${option.everyMs}) must be less than autoExtend.byMs (${option.byMs}), or the lease lapses between beats`,
    );
  }
  return { ...option };
}

/** The option's times, the missing ones derived from the table's ack wait. */
export function leaseTimes(option: AutoExtendOptions, ackWaitMs: number): LeaseTimes {
  const everyMs = option.everyMs ?? Math.max(1, Math.floor(Math.min(ackWaitMs, option.byMs ?? ackWaitMs) / 2));
  const byMs = option.byMs ?? Math.max(ackWaitMs, 2 * everyMs);
  return { everyMs, byMs };
}

/** Starts beating for `message`; returns the function that stops it. */
export function startHeartbeat(message: ReceivedMessage<unknown>, times: LeaseTimes, hooks: HeartbeatHooks): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (from: number) => {
    timer = setTimeout(() => void beat(), Math.max(0, from + times.everyMs - Date.now()));
  };
  const beat = async () => {
    timer = undefined;
    const sentAt = Date.now();
    try {
      const outcome = await message.extendLease(times.byMs);
      if (stopped) return;
      if (outcome === "done") schedule(sentAt);
      else if (outcome === "stale") hooks.stale();
      // "gone": acked, by this subscription or another; there is no lease left to keep.
    } catch (err) {
      if (stopped) return;
      hooks.error(err instanceof Error ? err : new Error(String(err)));
      schedule(sentAt);
    }
  };
  schedule(message.receivedAt);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
}
