/**
 * "node-floor": not a queue but a yardstick. The same producers and consumers as tablemq's (HTTP batches,
 * a WebSocket with ack frames) against floor-server.ts, the least Node server that commits each enqueue
 * before its 2xx and each ack before its credit returns. Whatever tablemq spends beyond it is tablemq's own
 * (validation, cache, manager, delivery records, metrics); what the floor spends is what any Node server on
 * MySQL pays on this machine. It runs in every `npm run bench`, after the peers; the report gives tablemq's
 * ratio to it apart from theirs.
 */
import http from "node:http";
import { fileURLToPath } from "node:url";
import { peakRss, type ServerProcesses } from "../lib/cpu.js";
import type { BenchPayload } from "../lib/payload.js";
import { type ServerProcess, startServerProcess, stopServerProcess } from "../lib/server-process.js";
import type { Adapter, AdapterFactory, AdapterOptions, Consumer, Producer } from "../lib/types.js";
import { ackingConsumer, BENCH_DB_URL } from "./tablemq.js";

const SERVER = fileURLToPath(new URL("./floor-server.ts", import.meta.url));
let running: ServerProcess | undefined;

class FloorAdapter implements Adapter {
  readonly name = "node-floor";
  readonly durability = "same MariaDB; INSERT committed before the 2xx, ack UPDATE committed; no poller, cache bound or delivery record";

  constructor(private readonly opts: AdapterOptions) {}

  async version(): Promise<string> {
    return `node:http + ws + mysql2, Node ${process.version}`;
  }

  async prepare(): Promise<void> {
    if (!running || running.child.exitCode !== null) running = await startServer();
    this.opts.endpoint = running.url;
    const res = await fetch(`${running.url}/reset`, { method: "POST" });
    if (res.status !== 204) throw new Error(`node-floor: reset failed: ${res.status} ${await res.text()}`);
  }

  async cleanup(): Promise<void> {}

  async shutdown(): Promise<void> {
    const server = running;
    running = undefined;
    await stopServerProcess(server);
  }

  serverProcesses(): Record<string, ServerProcesses> {
    return { "node-floor": { pids: running?.child.pid ? [running.child.pid] : [] }, mariadb: { comms: ["mariadbd"] } };
  }

  serverPeakRss(): Promise<number | undefined> {
    return peakRss(running?.child.pid);
  }

  async producer(): Promise<Producer> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const url = `${this.opts.endpoint}/messages`;
    return {
      publish: (payloads) =>
        new Promise<void>((resolve, reject) => {
          const body = JSON.stringify({ messages: payloads.map((payload) => ({ payload })) });
          const req = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
            res.resume();
            res.on("end", () => (res.statusCode === 201 ? resolve() : reject(new Error(`node-floor: ${res.statusCode}`))));
          });
          req.on("error", reject);
          req.end(body);
        }),
      async close() {
        agent.destroy();
      },
    };
  }

  consumer(onMessage: (payload: BenchPayload) => void): Promise<Consumer> {
    return ackingConsumer(`${this.opts.endpoint!.replace(/^http/, "ws")}/subscribe?maxInFlight=${this.opts.prefetch}`, onMessage);
  }
}

function startServer(): Promise<ServerProcess> {
  return startServerProcess(["--import", "tsx", SERVER, BENCH_DB_URL, "bench_node_floor"], "node-floor server");
}

const factory: AdapterFactory = (opts) => new FloorAdapter(opts);
export default factory;
