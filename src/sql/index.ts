/**
 * `tablemq/sql`: enqueue, ack and postpone inside the application's own MySQL transaction, and tell the
 * servers after the commit. README, "Enqueue in your own transaction".
 */
export { enqueue, type Change, type Enqueued, type SqlLimits, type SqlMessage, type SqlOptions } from "./enqueue.js";
export { ack, postpone, type Acked, type Postponed, type Which } from "./settle.js";
export {
  HttpNotifier,
  RedisNotifier,
  type Notifier,
  type NotifierOptions,
  type RedisNotifierOptions,
  type RedisPublisher,
} from "./notify.js";
export type { KyselyLike, SqlExecutor } from "./executor.js";
export type { WakeNote } from "../model/wake.js";
export { TablemqError } from "../errors.js";
