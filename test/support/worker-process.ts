/**
 * A worker as a new user writes one from the README, with no error listener:
 *   node --import tsx test/support/worker-process.ts <url> <table>
 * Callback mode; its handler throws for payload "boom". Prints "ready" once subscribed.
 */
import { TablemqClient } from "../../src/client/index.js";

const [url, table] = process.argv.slice(2) as [string, string];
const client = new TablemqClient({ url });
const sub = client.subscribe(table, {
  onMessage: (msg) => {
    if (msg.payload === "boom") throw new Error("the handler failed");
  },
});
sub.once("subscribed", () => process.stdout.write("ready\n"));
