/**
 * The embedded store's worker thread (thread-store.ts starts it): opens the SQLite file and serves calls of
 * SqliteStore's methods, one at a time in the order they come (Kysely's driver serializes them anyway), so
 * SQLite's synchronous statements and fsyncs hold this thread, never the server's event loop.
 */
import { parentPort, workerData } from "node:worker_threads";
import { type Answer, type Call, crossError, type Ready } from "./thread-protocol.js";
import { createSqliteStore, type SqliteStore } from "./store.js";

const port = parentPort!;
let store: SqliteStore | undefined;
try {
  store = createSqliteStore((workerData as { path: string }).path);
  port.postMessage({ ready: true, path: store.path } satisfies Ready);
} catch (err) {
  port.postMessage({ ready: false, error: crossError(err) } satisfies Ready);
}

port.on("message", (call: Call) => {
  void (async () => {
    let answer: Answer;
    try {
      if (!store) throw new Error("the store is not open");
      const method = (store as unknown as Record<string, (...args: unknown[]) => unknown>)[call.method];
      if (typeof method !== "function" || !CALLABLE.has(call.method)) throw new Error(`not a store method: ${call.method}`);
      answer = { id: call.id, value: await method.apply(store, call.args) };
    } catch (err) {
      answer = { id: call.id, error: crossError(err) };
    }
    port.postMessage(answer);
    if (call.method === "close") port.close();
  })();
});

/** The methods the server may call across (MessageStore, WebhookStore, and the statement times). */
const CALLABLE = new Set([
  "discoverTables",
  "createTable",
  "alterTableOptions",
  "dropTable",
  "describeTable",
  "insertMessages",
  "readDueCrossing",
  "claim",
  "reschedule",
  "ack",
  "settleGroups",
  "updateDeliveries",
  "deadLetter",
  "deadLetterDeliveries",
  "listDead",
  "countDead",
  "redrive",
  "purge",
  "describeTables",
  "sweep",
  "deleteUnacked",
  "oldestAck",
  "dueTimes",
  "browse",
  "getMessage",
  "listWebhooks",
  "putWebhook",
  "deleteWebhook",
  "deleteWebhooksOfMissingTables",
  "ping",
  "close",
  "takeStatementTimes",
]);
