import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Ajv } from "ajv";
import { WebhookPostBody } from "../../src/wire.js";
import { waitUntil } from "./wait.js";

const matchesPostBody = new Ajv().compile(WebhookPostBody);

export interface TargetRequest {
  /** Date.now() when the request's body had arrived. */
  at: number;
  headers: IncomingHttpHeaders;
  /** The exact body bytes. */
  raw: Buffer;
  json: WebhookPostBody;
  /** The status it was answered with. */
  status: number;
}

/**
 * A real webhook target on 127.0.0.1 (port 0): records every request and answers with the status
 * `answer` returns for it (200 by default).
 */
export class WebhookTarget {
  readonly requests: TargetRequest[] = [];
  /** Ajv's complaints about bodies that do not match wire.ts's WebhookPostBody (none expected). */
  readonly badBodies: string[] = [];
  answer: (req: Omit<TargetRequest, "status">) => number = () => 200;
  private server: Server | undefined;
  url = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const raw = Buffer.concat(chunks);
        const seen = { at: Date.now(), headers: req.headers, raw, json: JSON.parse(raw.toString("utf8")) };
        if (!matchesPostBody(seen.json)) this.badBodies.push(JSON.stringify(matchesPostBody.errors));
        const status = this.answer(seen);
        this.requests.push({ ...seen, status });
        res.writeHead(status, { "content-type": "text/plain" }).end(status < 300 ? "ok" : "refused");
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  /** Message ids of the requests answered 2xx, in arrival order. */
  deliveredIds(): string[] {
    return this.requests.filter((r) => r.status < 300).flatMap((r) => r.json.messages.map((m) => m.id));
  }

  async waitForDelivered(n: number, timeoutMs = 10_000): Promise<string[]> {
    await waitUntil(() => this.deliveredIds().length >= n, `${n} messages delivered (have ${this.deliveredIds().length})`, timeoutMs);
    return this.deliveredIds();
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
