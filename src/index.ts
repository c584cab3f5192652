/**
 * tablemq's public API. The client alone (no server dependencies loaded) is also available as
 * `tablemq/client`.
 */
export * from "./client/index.js";
export {
  Engine,
  type EngineConfig,
  type EnqueueMessage,
  type EnqueueResult,
  type TableDescription as EngineTableDescription,
} from "./engine/engine.js";
export { MessageManager, type Subscription as ManagerSubscription } from "./manager/manager.js";
export type { Receiver } from "./manager/receivers.js";
export { resolveOptions, formatComment, parseComment, type TableOptions as MessageTableOptions } from "./options.js";
export { type Clock, systemClock } from "./clock.js";
export { createMysqlStore, MysqlStore } from "./store/mysql/store.js";
export type { MessageStore } from "./store/types.js";
export type { MessageRow } from "./model/messages.js";
export { loadConfig, type ServerConfig, ConfigError } from "./server/config.js";
export { startServer, installSignalHandlers, type RunningServer } from "./server/server.js";
