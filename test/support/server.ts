import { createPool, type Pool } from "mysql2/promise";
import { poolOptions } from "../../src/store/mysql/connect.js";
import { afterAll, beforeAll } from "vitest";
import WebSocket from "ws";
import { loadConfig, type ServerConfig } from "../../src/server/config.js";
import { startServer, type RunningServer } from "../../src/server/server.js";
import { type StoreKind, useOwnStoreDatabase } from "./database.js";
import { waitUntil } from "./wait.js";

/** Starts the real server on 127.0.0.1, port 0, against `databaseUrl`. */
export function startTestServer(databaseUrl: string, overrides: Partial<ServerConfig> = {}): Promise<RunningServer> {
  return startServer({ ...loadConfig({}, { databaseUrl, port: 0, host: "127.0.0.1", logLevel: "silent" }), ...overrides });
}

export interface HttpResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** JSON over HTTP; `raw` sends the body string as is; `timeoutMs` bounds the wait for the answer. */
export async function http<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  raw?: string,
  timeoutMs?: number,
): Promise<HttpResult<T>> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined && raw === undefined ? {} : { "content-type": "application/json" },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    ...(timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(timeoutMs) }),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export interface Delivered {
  id: string;
  priority: number;
  epoch: number;
  receipt: string;
  payload: unknown;
}

/** A bare WebSocket subscriber that records every frame. */
export class TestSubscriber {
  readonly frames: any[] = [];
  /** Every frame's text as it arrived (bytes as UTF-8). */
  readonly rawFrames: string[] = [];
  readonly socket: WebSocket;
  closeCode: number | undefined;
  closeReason = "";
  readonly opened: Promise<void>;
  /** Set to ack every batch over the socket as it arrives. */
  autoAck = false;

  constructor(base: string, table: string, query = "", opts: { autoAck?: boolean; token?: string } = {}) {
    this.autoAck = opts.autoAck ?? false;
    const headers = opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` };
    this.socket = new WebSocket(`${base.replace(/^http/, "ws")}/v1/tables/${table}/subscribe${query}`, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once("open", () => resolve());
      this.socket.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      this.socket.once("error", reject);
    });
    this.socket.on("message", (data) => {
      this.rawFrames.push(data.toString());
      const frame = JSON.parse(data.toString());
      this.frames.push(frame);
      if (this.autoAck && frame.type === "messages") this.send({ type: "ack", ids: frame.messages.map((m: Delivered) => m.id) });
    });
    this.socket.on("close", (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
  }

  get messages(): Delivered[] {
    return this.frames.filter((f) => f.type === "messages").flatMap((f) => f.messages);
  }

  get ids(): string[] {
    return this.messages.map((m) => m.id);
  }

  errors(): any[] {
    return this.frames.filter((f) => f.type === "error");
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  async waitForMessages(n: number, timeoutMs = 5_000): Promise<Delivered[]> {
    await waitUntil(() => this.messages.length >= n, `${n} messages (have ${this.messages.length})`, timeoutMs);
    return this.messages;
  }

  async waitForClose(timeoutMs = 5_000): Promise<number> {
    await waitUntil(() => this.closeCode !== undefined, "the socket to close", timeoutMs);
    return this.closeCode!;
  }

  close(): void {
    this.socket.close();
  }
}

export interface TestServer {
  readonly server: RunningServer;
  /** The server's base URL. */
  readonly base: string;
  /** The server's own database. */
  readonly databaseUrl: string;
  /** A WebSocket subscriber that got its `subscribed` frame (with `token` as its bearer); closed when the block ends. */
  subscribe(table: string, query?: string, autoAck?: boolean, token?: string): Promise<TestSubscriber>;
}

/** For a describe block: a real server on a database of its own (MySQL unless `kind` says), started before and closed after it. */
export function useTestServer(databaseName: string, overrides: Partial<ServerConfig> = {}, kind: StoreKind = "mysql"): TestServer {
  const database = useOwnStoreDatabase(kind, databaseName);
  const subscribers: TestSubscriber[] = [];
  let running: RunningServer | undefined;
  beforeAll(async () => {
    running = await startTestServer(database.url, overrides);
  });
  afterAll(async () => {
    for (const s of subscribers) s.close();
    await running?.close();
  });
  return {
    get server() {
      if (!running) throw new Error("the test server is not started yet");
      return running;
    },
    get base() {
      return this.server.url;
    },
    get databaseUrl() {
      return database.url;
    },
    async subscribe(table, query = "", autoAck = false, token) {
      const s = new TestSubscriber(this.base, table, query, { autoAck, ...(token === undefined ? {} : { token }) });
      subscribers.push(s);
      await s.opened;
      await waitUntil(() => s.frames.some((f) => f.type === "subscribed"), "the subscribed frame");
      return s;
    },
  };
}

/** A small mysql2 pool on the test server's own database, for looking at its tables; ended after the block. */
export function useServerDatabase(t: TestServer): { readonly pool: Pool } {
  let pool: Pool | undefined;
  beforeAll(() => {
    pool = createPool({ ...poolOptions(t.databaseUrl), connectionLimit: 2 });
  });
  afterAll(() => pool?.end());
  return {
    get pool() {
      if (!pool) throw new Error("the pool is made before the tests");
      return pool;
    },
  };
}
