/** The message states as SQL, shared by every SQL store's describeTable and browsing. */
import { sql, type RawBuilder } from "kysely";
import type { MessageState } from "./types.js";

/**
 * Each state's rule for an unacked row at `now` (ns), as each store's describeTable counts them: the one
 * definition of ready, delayed and in flight. A row whose time_next is NULL is in none.
 */
export function stateRules(now: bigint): Record<MessageState, RawBuilder<unknown>> {
  return {
    ready: sql`time_next <= ${now}`,
    delayed: sql`time_next > ${now} AND IFNULL(epoch, 0) = 0`,
    inFlight: sql`time_next > ${now} AND epoch > 0`,
  };
}
