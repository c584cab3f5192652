export { TablemqClient, type ClientOptions } from "./client.js";
export { TablemqError } from "./http.js";
export {
  Subscription,
  type ErrorContext,
  type Message,
  type ReconnectingInfo,
  type SubscribeOptions,
  type SubscriptionEvents,
} from "./subscription.js";
export { reconnectDelay, type ReconnectOptions } from "./backoff.js";
export type {
  PublishMessage,
  PublishResult,
  SubscribedInfo,
  TableDescription,
  TableOptions,
  TableStats,
  Webhook,
  WebhookHealth,
  WebhookSettings,
  WireMessage,
} from "./types.js";
