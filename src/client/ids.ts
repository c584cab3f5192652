/**
 * Message ids made by the client, in the server's own scheme (ids.ts), so a publish can be sent again safely.
 * Their id node is one of the applications' (never a server's): a server's id cannot collide with them.
 */
import { systemClock } from "../clock.js";
import { drawAppIdNode, IdGenerator } from "../ids.js";

const ids = new IdGenerator(systemClock, Math.random, drawAppIdNode());

/**
 * A new message id: give it to a message before its first publish, and sending the publish again after an
 * error whose outcome is unknown cannot write it twice (enqueue is idempotent by id).
 */
export function newId(): string {
  return ids.next();
}
