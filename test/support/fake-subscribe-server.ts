/** A fake subscribe endpoint for the client's unit tests: no database, records what clients send. */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

export interface Peer {
  socket: WebSocket;
  request: IncomingMessage;
  frames: Array<Record<string, unknown>>;
}

/** Accepts subscriptions to any table but "missing" (404) and records what clients send. */
export class FakeServer {
  readonly peers: Peer[] = [];
  upgrades = 0;
  /** Accept, send `subscribed`, and close at once with 1001. */
  dropOnConnect = false;
  /** Refuse upgrades with 503 and this retry-after (seconds). */
  refuseWithRetryAfter: string | undefined;
  /** When set, the frame it returns for a client frame is sent back (e.g. an `extended` reply). */
  answer: ((frame: Record<string, unknown>) => object | undefined) | undefined;
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  port = 0;

  constructor() {
    this.http = createServer((_req, res) => res.writeHead(404).end());
    this.http.on("upgrade", (req, socket, head) => {
      this.upgrades++;
      if (this.refuseWithRetryAfter !== undefined) {
        const body = JSON.stringify({ error: { code: "unavailable", message: "the server is shutting down" } });
        socket.end(
          `HTTP/1.1 503 Service Unavailable\r\nretry-after: ${this.refuseWithRetryAfter}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
        return;
      }
      if (req.url?.startsWith("/v1/tables/missing/")) {
        const body = JSON.stringify({ error: { code: "table_not_found", message: 'table "missing" is not a message table' } });
        socket.end(
          `HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const peer: Peer = { socket: ws, request: req, frames: [] };
        ws.on("message", (data) => {
          const frame = JSON.parse(data.toString()) as Record<string, unknown>;
          peer.frames.push(frame);
          const reply = this.answer?.(frame) ?? closingReply(frame);
          if (reply) ws.send(JSON.stringify(reply));
        });
        this.peers.push(peer);
        ws.send(JSON.stringify({ type: "subscribed", table: "t", batchSize: 10, ackWaitMs: 1000, maxInFlight: 5 }));
        if (this.dropOnConnect) ws.close(1001, "table unavailable");
      });
    });
  }

  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve) => this.http.listen(port, "127.0.0.1", resolve));
    this.port = (this.http.address() as AddressInfo).port;
  }

  get last(): Peer {
    return this.peers[this.peers.length - 1]!;
  }

  /** Delivers messages with these ids (epoch 0, receipt `<id>:0`, payload `{n: id}`). */
  push(peer: Peer, ...ids: string[]): void {
    peer.socket.send(
      JSON.stringify({
        type: "messages",
        messages: ids.map((id) => ({ id, priority: 50, epoch: 0, receipt: `${id}:0`, payload: { n: Number(id) } })),
      }),
    );
  }

  async close(): Promise<void> {
    for (const p of this.peers) p.socket.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

/** A closing client's pause and release are answered as the server does (every release current). */
function closingReply(frame: Record<string, unknown>): object | undefined {
  if (frame.type === "pause") return { type: "paused", ref: frame.ref };
  if (frame.type === "release") return { type: "released", ref: frame.ref, released: (frame.receipts as string[]).length, stale: [] };
  return undefined;
}

/** The next `n` messages of a subscription's iterator (fewer if it ends first). */
export async function takeMessages<M>(it: AsyncIterator<M>, n: number): Promise<M[]> {
  const out: M[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}
