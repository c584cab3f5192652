/**
 * The Node floor's server (see floor.ts): the least server that keeps tablemq's write promises on MySQL.
 * POST /messages INSERTs the request's messages in one statement and answers 201 after its commit; then
 * the messages are pushed to WebSocket subscribers, round-robin, at most `maxInFlight` unacked each; an ack
 * frame is one UPDATE, committed before the credit comes back. No framework, no validation, no cache bound,
 * no poller, no delivery record: what is left is the cost any Node server pays for HTTP, WebSocket and
 * mysql2 on this machine. Run by floor.ts in its own process, one for a whole bench run (so it warms up as
 * tablemq's server does); prints its URL on stdout. POST /reset empties the table between workloads.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createPool } from "mysql2/promise";
import WebSocket, { WebSocketServer } from "ws";

const [databaseUrl, table] = process.argv.slice(2) as [string, string];
const pool = createPool({ uri: databaseUrl, connectionLimit: 4 });
await pool.query(`DROP TABLE IF EXISTS ${table}`);
await pool.query(
  `CREATE TABLE ${table} (id BIGINT NOT NULL PRIMARY KEY, time_next BIGINT, time_acked BIGINT, message JSON, KEY (time_acked, time_next)) ENGINE=InnoDB`,
);

interface Message {
  id: number;
  payload: unknown;
}
interface Subscriber {
  ws: WebSocket;
  credit: number;
}
/** Committed messages not yet sent, oldest first from `head` (an index: a backlog of a million is not spliced). */
let ready: Message[] = [];
let head = 0;
const subscribers: Subscriber[] = [];
let turn = 0;
let lastId = 0;

/** Sends what is ready to subscribers with credit, round-robin, one frame per subscriber per turn. */
function pump(): void {
  let idle = 0;
  while (head < ready.length && subscribers.length > 0 && idle < subscribers.length) {
    const s = subscribers[turn++ % subscribers.length]!;
    if (s.credit === 0) {
      idle++;
      continue;
    }
    idle = 0;
    const batch = ready.slice(head, head + Math.min(s.credit, 100));
    head += batch.length;
    s.credit -= batch.length;
    s.ws.send(JSON.stringify({ type: "messages", messages: batch.map((m) => ({ id: String(m.id), payload: m.payload })) }));
  }
  if (head > 100_000 && head * 2 > ready.length) {
    ready = ready.slice(head);
    head = 0;
  }
}

const server = http.createServer((req, res) => {
  if (req.url === "/reset") {
    ready = [];
    head = 0;
    void pool.query(`TRUNCATE TABLE ${table}`).then(
      () => res.writeHead(204).end(),
      (err: Error) => res.writeHead(500).end(err.message),
    );
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const { messages } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { messages: Array<{ payload: unknown }> };
    const now = Date.now();
    const batch = messages.map((m) => ({ id: ++lastId, payload: m.payload }));
    pool.query(`INSERT INTO ${table} (id, time_next, message) VALUES ?`, [batch.map((m) => [m.id, now, JSON.stringify(m.payload)])]).then(
      () => {
        res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ ids: batch.map((m) => String(m.id)) }));
        for (const m of batch) ready.push(m);
        pump();
      },
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
});

const wss = new WebSocketServer({ server });
wss.on("connection", (ws, req) => {
  const s: Subscriber = { ws, credit: Number(new URL(req.url ?? "/", "http://x").searchParams.get("maxInFlight") ?? 100) };
  subscribers.push(s);
  pump(); // a backlog waits for its first subscriber
  ws.on("close", () => subscribers.splice(subscribers.indexOf(s), 1));
  ws.on("message", (data) => {
    const { ids } = JSON.parse(data.toString()) as { ids: string[] };
    pool.query(`UPDATE ${table} SET time_acked = ? WHERE id IN (?)`, [Date.now(), ids.map(Number)]).then(
      () => {
        s.credit += ids.length;
        pump();
      },
      (err: Error) => process.stderr.write(`floor: ack failed: ${err.message}\n`),
    );
  });
});

server.listen(0, "127.0.0.1", () => process.stderr.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`));
