/**
 * The socket of a subscription and its reconnects.
 *
 * Every connection attempt gets a new generation; frames and drops of an older generation are ignored.
 * Frames may be sent once the current generation's `subscribed` frame has arrived. After an unexpected
 * drop the connection is re-established with capped, jittered exponential backoff; the backoff starts over
 * once a connection has stayed up for a few seconds, and honours a `retry-after` on a refused upgrade (429
 * overloaded, 503 unavailable). Permanent failures are not retried: an upgrade answered with a 4xx (404
 * table_not_found, 401/403, 400) other than 408/429, or close code 1008 (policy violation). Given several
 * servers, every reconnect goes to the next one of the list (servers.ts), whatever ended the connection.
 */
import WebSocket from "ws";
import { type ReconnectOptions, reconnectDelay } from "./backoff.js";
import { errorFromResponse, TablemqError } from "./http.js";
import type { ServerList } from "./servers.js";
import type { ClientFrame, ServerFrame } from "./types.js";

/** How long close() waits for the server to answer the close handshake before dropping the socket. */
const CLOSE_HANDSHAKE_MS = 2_000;
const MAX_ERROR_BODY = 64 * 1024;
/**
 * A connection that stayed subscribed this long resets the reconnect backoff. Resetting on every
 * `subscribed` frame instead would let a server that accepts and then drops at once be hammered.
 */
const STABLE_CONNECTION_MS = 5_000;

export interface ReconnectingInfo {
  /** 1 for the first retry after a drop. */
  attempt: number;
  delayMs: number;
  /** Why the connection ended or could not be made. */
  error: TablemqError;
  /** The base URL of the server the next attempt goes to (the next of the list, given several). */
  url: string;
}

export interface ConnectionTarget {
  table: string;
  /** The servers' base URLs (http or https); the current one is connected to, the next after a drop. */
  servers: ServerList;
  /** The subscribe endpoint's path, query included, after a server's base URL. */
  path: string;
  headers: Record<string, string>;
  handshakeTimeoutMs: number;
  /**
   * A socket that carries nothing (no ping, no frame) for this long is dropped and reconnected: a peer that
   * vanished, or a proxy that black-holes traffic. Default: twice the ping interval the server announces.
   */
  heartbeatTimeoutMs?: number;
}

export interface ConnectionHandlers {
  /** A frame of the current generation (after the connection's own bookkeeping for `subscribed`). */
  frame(frame: ServerFrame, generation: number): void;
  /** A frame that is not JSON. */
  badFrame(error: TablemqError): void;
  /** The socket of `generation` is gone, whatever the reason (close() included). */
  gone(generation: number): void;
  reconnecting(info: ReconnectingInfo): void;
  /** A permanent failure, or a drop with reconnect off: there will be no other connection. */
  failed(error: TablemqError): void;
}

/** Where frames go: the current socket, once subscribed. */
export interface FrameSink {
  readonly generation: number;
  /** A socket is open and its `subscribed` frame has arrived. */
  readonly canSend: boolean;
  /**
   * Hands the frame to the socket; undefined when no socket may carry frames now. The promise resolves
   * true once the socket took the frame, false when it failed to (the socket went away).
   */
  send(frame: ClientFrame): Promise<boolean> | undefined;
}

type State = "connecting" | "open" | "backoff" | "stopped";

export class SocketConnection implements FrameSink {
  private state: State = "connecting";
  private ws: WebSocket | undefined;
  /** Increases with every connection attempt. */
  generation = 0;
  /** The generation whose `subscribed` frame has arrived (frames may be sent on it). */
  private subscribedGeneration = -1;
  private attempt = 0;
  private subscribedAt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Set by stop(): drops are no longer retried nor reported as failures. */
  private stopping = false;
  private silenceTimer: NodeJS.Timeout | undefined;
  private silenceMs: number | undefined;

  constructor(
    private readonly target: ConnectionTarget,
    private readonly reconnect: Required<ReconnectOptions> | false,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.connect();
  }

  /** The base URL of the server connected to, or of the next attempt's while there is no socket. */
  get server(): string {
    return this.target.servers.current;
  }

  /** A socket is open and its `subscribed` frame has arrived (also after stop()). */
  get canSend(): boolean {
    return this.ws !== undefined && this.ws.readyState === WebSocket.OPEN && this.subscribedGeneration === this.generation;
  }

  send(frame: ClientFrame): Promise<boolean> | undefined {
    if (!this.canSend) return undefined;
    const ws = this.ws!;
    return new Promise((resolve) => ws.send(JSON.stringify(frame), (err) => resolve(!err)));
  }

  /** No reconnect from now on; the socket stays up (for the last frames) until close(). */
  stop(): void {
    this.stopping = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  /** Stops and closes the socket: close handshake with code 1000, dropped after 2 s without an answer. */
  async close(): Promise<void> {
    this.stop();
    clearTimeout(this.silenceTimer);
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_MS);
        ws.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        if (ws.readyState === WebSocket.OPEN) ws.close(1000, "client closing");
        else ws.terminate();
      });
    }
    this.ws = undefined;
    this.state = "stopped";
  }

  private connect(): void {
    const generation = ++this.generation;
    this.state = "connecting";
    let failure: TablemqError | undefined;
    let permanent = false;
    let opened = false;
    const ws = new WebSocket(socketUrl(this.target.servers.current, this.target.path), {
      headers: this.target.headers,
      handshakeTimeout: this.target.handshakeTimeoutMs,
    });
    this.ws = ws;

    ws.on("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size <= MAX_ERROR_BODY) chunks.push(c);
      });
      const finish = () => {
        if (failure) return;
        const text = Buffer.concat(chunks).toString("utf8");
        const status = res.statusCode ?? 0;
        failure = errorFromResponse(status, safeParse(text), text, header(res.headers["retry-after"]));
        permanent = isPermanentStatus(status);
        ws.terminate();
      };
      res.on("end", finish);
      res.on("error", finish);
    });
    ws.on("open", () => {
      opened = true;
      this.heard(ws, generation);
    });
    ws.on("ping", () => this.heard(ws, generation));
    ws.on("error", (err) => {
      failure ??= new TablemqError(0, "unavailable", `subscribe ${this.target.table}: ${describeSocketError(err)}`, undefined, {
        cause: err,
      });
    });
    ws.on("message", (data, isBinary) => {
      if (generation !== this.generation || isBinary) return;
      this.heard(ws, generation);
      this.onFrame(generation, rawText(data));
    });
    ws.on("close", (code, reasonBuffer) => {
      if (generation === this.generation) clearTimeout(this.silenceTimer);
      const reason = reasonBuffer.toString("utf8");
      if (opened && code === 1008) {
        failure = new TablemqError(0, "policy_violation", reason || "the server closed the subscription (policy violation)");
        permanent = true;
      } else if (opened || !failure) {
        failure = new TablemqError(
          0,
          "unavailable",
          `subscription to ${this.target.table} closed by the server (code ${code}${reason ? `: ${reason}` : ""})`,
        );
      }
      this.onEnd(generation, failure!, permanent);
    });
  }

  private onFrame(generation: number, text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      this.handlers.badFrame(new TablemqError(0, "bad_frame", `the server sent a frame that is not JSON: ${text.slice(0, 100)}`));
      return;
    }
    if (frame.type === "subscribed") {
      if (this.state === "connecting") this.state = "open";
      this.subscribedGeneration = generation;
      this.subscribedAt = Date.now();
      this.silenceMs = this.target.heartbeatTimeoutMs ?? (frame.pingIntervalMs ? 2 * frame.pingIntervalMs : undefined);
      if (this.ws) this.heard(this.ws, generation);
    }
    this.handlers.frame(frame, generation);
  }

  /** The socket carried something: its silence timer starts again (when there is one). */
  private heard(ws: WebSocket, generation: number): void {
    clearTimeout(this.silenceTimer);
    const ms = this.silenceMs ?? this.target.heartbeatTimeoutMs;
    if (ms === undefined || generation !== this.generation) return;
    this.silenceTimer = setTimeout(() => {
      if (generation !== this.generation || this.stopping) return;
      // Nothing for twice the ping period: the path is dead though the socket looks open. Its close event
      // (code 1006) starts the reconnect.
      ws.terminate();
    }, ms);
    this.silenceTimer.unref();
  }

  private onEnd(generation: number, error: TablemqError, permanent: boolean): void {
    if (generation !== this.generation) return;
    this.ws = undefined;
    this.subscribedGeneration = -1;
    this.handlers.gone(generation);
    if (this.stopping) return; // close() is in charge
    if (permanent || this.reconnect === false) {
      this.state = "stopped";
      this.handlers.failed(error);
      return;
    }
    if (this.subscribedAt > 0 && Date.now() - this.subscribedAt >= STABLE_CONNECTION_MS) this.attempt = 0;
    this.subscribedAt = 0;
    const { servers } = this.target;
    const left = servers.current;
    servers.moveOn(left);
    // A 429 or 503 may say when to come back; never sooner than the backoff, never later than its cap. It
    // speaks for its own server only: the next attempt on another server waits for the backoff alone.
    const retryAfter = servers.current === left ? Math.min(error.retryAfterMs ?? 0, this.reconnect.maxDelayMs) : 0;
    const delayMs = Math.max(reconnectDelay(this.attempt, this.reconnect), retryAfter);
    this.attempt++;
    this.state = "backoff";
    this.handlers.reconnecting({ attempt: this.attempt, delayMs, error, url: servers.current });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state === "backoff" && !this.stopping) this.connect();
    }, delayMs);
  }
}

/** The ws:// or wss:// URL of `path` on the server at `base` (http:// or https://). */
export function socketUrl(base: string, path: string): string {
  const url = new URL(base + path);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/** An upgrade refused with a 4xx will be refused again (except timeouts and overload): do not retry. */
export function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function describeSocketError(err: Error): string {
  const code = (err as { code?: string }).code;
  return code ? `${code} (${err.message})` : err.message;
}
