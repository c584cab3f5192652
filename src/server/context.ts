import type { ClusterNode } from "../cluster/node.js";
import type { Engine } from "../engine/engine.js";
import type { MessageStore } from "../store/types.js";
import type { WebhookRegistry } from "../webhooks/registry.js";
import type { ServerConfig } from "./config.js";
import type { Metrics } from "./metrics.js";

/** What every route module gets. `shuttingDown` flips when graceful shutdown begins. */
export interface ServerContext {
  config: ServerConfig;
  engine: Engine;
  store: MessageStore;
  metrics: Metrics;
  webhooks: WebhookRegistry;
  /** This node among the others on its database (absent when the store has no membership). */
  cluster?: ClusterNode;
  clock: () => number;
  /** When the server started (epoch ms). */
  startedAt: number;
  state: { shuttingDown: boolean };
}
