/**
 * The HTTP connections graceful shutdown closes itself (RELIABILITY.md, problem 9). node's
 * closeIdleConnections(), which fastify's forceCloseConnections: "idle" calls, closes keep-alive
 * connections resting between requests, but not one that has not sent a request yet, as fetch (undici)
 * keeps in reserve, for instance after a request it aborted: close() would wait until the client drops it,
 * or the shutdown deadline. So every connection is tracked with its requests in flight; when shutdown begins
 * those with none are destroyed, and so is any connection opened after that. A connection with a request
 * in flight closes after its answer, which says `connection: close` (app.ts). WebSocket connections are
 * the WebSocket plugin's to close (1001).
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

export class ConnectionTracker {
  /** Open HTTP connections, each with its requests in flight. */
  private readonly open = new Map<Socket, number>();
  private closing = false;

  constructor(server: Server) {
    server.on("connection", (socket: Socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      this.open.set(socket, 0);
      socket.once("close", () => this.open.delete(socket));
    });
    server.on("upgrade", (_req: IncomingMessage, socket: Socket) => this.open.delete(socket));
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      const inFlight = this.open.get(socket);
      if (inFlight === undefined) return;
      this.open.set(socket, inFlight + 1);
      res.once("close", () => {
        const left = this.open.get(socket);
        if (left !== undefined) this.open.set(socket, left - 1);
      });
    });
  }

  /** Shutdown begins: destroys every HTTP connection with no request in flight, now and from now on. */
  closeIdle(): void {
    this.closing = true;
    for (const [socket, inFlight] of this.open) if (inFlight === 0) socket.destroy();
  }
}
