export { Queue, TablemqClient, type ClientOptions, type PublishOptions } from "./client.js";
export { Unrecoverable, Worker, type Handler, type HandlerContext, type WorkOptions } from "./worker.js";
export { TablemqError } from "./http.js";
export { newId } from "./ids.js";
export type { FetchAnswer, FetchInit, FetchLike } from "./node-fetch.js";
export {
  Subscription,
  type AutoExtendOptions,
  type CloseOptions,
  type ErrorContext,
  type Message,
  type AckOptions,
  type ReconnectingInfo,
  type SubscribeOptions,
  type SubscriptionEvents,
} from "./subscription.js";
export { reconnectDelay, type ReconnectOptions } from "./backoff.js";
export type { ServerUrls } from "./servers.js";
export type {
  AckReceiptsResult,
  BrowsedMessage,
  BrowseOptions,
  BrowsePage,
  DeadLetterPage,
  DeadMessage,
  ExtendResult,
  FailReceiptsResult,
  PostponeReceiptsResult,
  PublishMessage,
  PublishResult,
  RedriveResult,
  StaleInfo,
  SubscribedInfo,
  TableDescription,
  TablePage,
  TableOptions,
  TableStats,
  Webhook,
  WebhookHealth,
  WebhookSettings,
  WireMessage,
} from "./types.js";
