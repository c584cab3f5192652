/**
 * The HTTP side of the client: one fetch wrapper that sends JSON, adds the bearer token, enforces a
 * timeout and turns every failure into a TablemqError, so callers handle one error type. The requests go
 * through Node's http/https with keep-alive (node-fetch.ts) unless a fetch is given.
 */
import { type FetchAnswer, type FetchLike, nodeFetch } from "./node-fetch.js";
import { afterFailure, ServerList, type ServerUrls } from "./servers.js";

/** Codes used when the server's error body cannot be read (a proxy's HTML page, an empty 502...). */
const CODE_BY_STATUS: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  413: "payload_too_large",
  429: "overloaded",
  503: "unavailable",
  504: "outcome_unknown",
};

/**
 * An error from the server (status and code as in the API's error body) or from reaching it.
 *
 * `status` 0 means no HTTP answer arrived: code `unavailable` (could not connect, connection reset) or
 * `timeout`. Unlike a 503, the outcome of a write is then unknown; enqueue with explicit ids to retry safely.
 * A 504 `outcome_unknown` says the same from the server, with the messages' `ids`: publishing them again
 * under those ids is safe (enqueue is idempotent by id).
 */
export class TablemqError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** From a `retry-after` header (429, 503), in milliseconds. */
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
    /** With a 504 `outcome_unknown`: the ids of the messages whose write may or may not have committed. */
    readonly ids?: readonly string[],
  ) {
    super(message, options);
    this.name = "TablemqError";
  }

  /**
   * Worth sending the same request again later: no answer came (`unavailable`, `timeout`), or the server was
   * overloaded (429), unavailable (503) or unsure of the outcome (504). With ids chosen before the first try
   * (`newId()`), a publish sent again writes nothing twice.
   */
  get retryable(): boolean {
    if (this.status === 0) return this.code === "unavailable" || this.code === "timeout";
    return this.status === 429 || this.status === 503 || this.status === 504;
  }

  /**
   * Whether the request's write can have happened: "unknown" when it may have reached the server with no
   * answer back (a timeout, a dropped connection, a 504); "not_written" for every answer that says so (4xx,
   * 429, 503) and for a request that never left (refused connection, a bad argument).
   */
  get outcome(): "not_written" | "unknown" {
    if (this.status === 504) return "unknown";
    if (this.status !== 0) return "not_written";
    if (this.code === "timeout") return "unknown";
    if (this.code !== "unavailable") return "not_written";
    return NEVER_SENT.has(causeCode(this.cause) ?? "") ? "not_written" : "unknown";
  }
}

/** Connection errors that mean the request never reached a server. */
const NEVER_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

function causeCode(cause: unknown): string | undefined {
  const { code, cause: inner } = (cause ?? {}) as { code?: string; cause?: { code?: string } };
  return inner?.code ?? code;
}

export interface HttpOptions {
  /** The server's base URL, or several nodes' (servers.ts: which one a request goes to, and when another). */
  url: ServerUrls;
  token?: string;
  /** Per request; default 30 s. */
  timeoutMs?: number;
  /** A fetch implementation (the global `fetch` fits); by default Node's http/https with keep-alive. */
  fetch?: FetchLike;
}

export interface HttpResponse<T> {
  status: number;
  body: T;
}

export class HttpTransport {
  readonly servers: ServerList;
  readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchImpl: FetchLike;

  constructor(options: HttpOptions) {
    this.servers = new ServerList(normalizeServerUrls(options.url));
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? nodeFetch();
  }

  /** The base URL requests go to now. */
  get baseUrl(): string {
    return this.servers.current;
  }

  /** Headers every request carries (and the WebSocket upgrade too). */
  authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  /**
   * Sends one request; resolves with a 2xx answer's status and parsed body, else throws TablemqError. With
   * several servers, one that gives no answer is passed over as `afterFailure` says: the request goes to
   * the next server at once when that cannot write anything twice (each server is tried once at most).
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<HttpResponse<T>> {
    const headers: Record<string, string> = { accept: "application/json", ...this.authHeaders() };
    if (body !== undefined) headers["content-type"] = "application/json";
    // Serialised before anything is sent: a body JSON cannot carry (a BigInt, a cycle) is the caller's
    // error, not "cannot reach the server", which would tell retry logic the write may have happened.
    const json = body === undefined ? undefined : serialise(body);
    const order = this.servers.order();
    const unreachable: Array<{ base: string; error: TablemqError }> = [];
    for (const base of order) {
      try {
        return await this.send<T>(base, method, path, headers, json);
      } catch (err) {
        const next = err instanceof TablemqError && order.length > 1 ? afterFailure(err, method) : "stay";
        if (next === "stay") throw err;
        this.servers.moveOn(base);
        if (next === "move") throw err;
        unreachable.push({ base, error: err as TablemqError });
      }
    }
    throw noServerAnswered(method, path, unreachable);
  }

  private async send<T>(
    base: string,
    method: string,
    path: string,
    headers: Record<string, string>,
    json: string | undefined,
  ): Promise<HttpResponse<T>> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    let res: FetchAnswer;
    let text: string;
    try {
      res = await this.fetchImpl(base + path, { method, headers, body: json, signal });
      text = await res.text();
    } catch (err) {
      const where = this.servers.urls.length > 1 ? base : undefined;
      throw networkError(method, path, err, signal.aborted, this.timeoutMs, where);
    }
    const parsed = parseJson(text);
    if (res.status >= 200 && res.status < 300) return { status: res.status, body: parsed as T };
    throw errorFromResponse(res.status, parsed, text, res.headers.get("retry-after"));
  }
}

/**
 * A bad argument or option, found before anything is sent: the same error (status 0, validation_failed,
 * the field first) wherever the client checks, as the server's 400s name their field.
 */
export function invalidArgument(field: string, problem: string): TablemqError {
  return new TablemqError(0, "validation_failed", `${field}: ${problem}`);
}

/**
 * Checks a whole-number argument (a count, or milliseconds when `ms`), unless it is undefined: the one rule
 * for every such option of the client.
 */
export function checkWhole(field: string, value: number | undefined, min: number, ms = false): void {
  if (value === undefined || (Number.isSafeInteger(value) && value >= min)) return;
  throw invalidArgument(field, `must be ${ms ? "a whole number of milliseconds" : "an integer"} >= ${min}, got ${value}`);
}

/** The body as JSON text, or a validation_failed TablemqError naming the first message that cannot be. */
function serialise(body: unknown): string {
  try {
    return JSON.stringify(body);
  } catch (err) {
    const messages = (body as { messages?: unknown[] }).messages;
    const at = Array.isArray(messages) ? messages.findIndex((m) => !serialisable((m as { payload?: unknown })?.payload)) : -1;
    const field = at >= 0 ? `messages[${at}].payload` : "body";
    throw new TablemqError(0, "validation_failed", `${field}: cannot be serialised as JSON: ${(err as Error).message}`);
  }
}

function serialisable(value: unknown): boolean {
  try {
    JSON.stringify(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The `url` option as a list of distinct base URLs (normalizeBaseUrl), in the order given. Throws a
 * TablemqError for an empty list or a URL that is not http(s).
 */
export function normalizeServerUrls(url: ServerUrls): string[] {
  const list: readonly unknown[] = typeof url === "string" ? [url] : Array.isArray(url) ? url : [url];
  if (list.length === 0) throw new TablemqError(0, "bad_request", "no server URL: give one, or a list of at least one");
  return [...new Set(list.map((u) => normalizeBaseUrl(u as string)))];
}

/** Strips trailing slashes so paths can be appended. Throws a TablemqError for a URL that is not http(s). */
export function normalizeBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TablemqError(0, "bad_request", `not a valid server URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TablemqError(0, "bad_request", `server URL must be http:// or https://, got ${JSON.stringify(url)}`);
  }
  return parsed.toString().replace(/\/+$/, "");
}

/** The path of a table resource, with its name escaped. */
export function tablePath(table: string, suffix = ""): string {
  return `/v1/tables/${encodeURIComponent(table)}${suffix}`;
}

/** Builds the error for a non-2xx answer from the API's `{"error":{code,message}}` body, or the status. */
export function errorFromResponse(status: number, body: unknown, text: string, retryAfter: string | null | undefined): TablemqError {
  const retryAfterMs = parseRetryAfter(retryAfter);
  const { error, ids } = (body ?? {}) as { error?: { code?: unknown; message?: unknown }; ids?: unknown };
  if (error && typeof error.code === "string") {
    const message = typeof error.message === "string" ? error.message : error.code;
    const inDoubt = Array.isArray(ids) && ids.every((id) => typeof id === "string") ? (ids as string[]) : undefined;
    return new TablemqError(status, error.code, message, retryAfterMs, undefined, inDoubt);
  }
  const code = CODE_BY_STATUS[status] ?? (status >= 500 ? "server_error" : "http_error");
  const snippet = text.trim().slice(0, 200);
  return new TablemqError(status, code, `HTTP ${status}${snippet ? `: ${snippet}` : ""}`, retryAfterMs);
}

/**
 * The error for a request that got no answer; `where` names the server when the client has several (a
 * single server's message is as before).
 */
function networkError(
  method: string,
  path: string,
  err: unknown,
  timedOut: boolean,
  timeoutMs: number,
  where: string | undefined,
): TablemqError {
  if (timedOut) {
    const at = where === undefined ? "" : ` at ${where}`;
    return new TablemqError(0, "timeout", `${method} ${path} timed out after ${timeoutMs} ms${at}`, undefined, { cause: err });
  }
  const detail = networkDetail(err);
  return new TablemqError(0, "unavailable", `${method} ${path}: cannot reach ${where ?? "the server"} (${detail})`, undefined, {
    cause: err,
  });
}

/** Why a request got no answer: Node's http puts the useful part (ECONNREFUSED...) in `code`; undici's fetch in `cause`. */
function networkDetail(err: unknown): string {
  const { code, cause } = err as { code?: string; cause?: { code?: string; message?: string } };
  return cause?.code ?? cause?.message ?? code ?? (err instanceof Error ? err.message : String(err));
}

/**
 * Every server was tried and none answered. The error's cause is the last try's: whether the write can have
 * happened (`outcome`) is that of a request that was sent again, so none of the tries before it wrote.
 */
function noServerAnswered(method: string, path: string, tries: ReadonlyArray<{ base: string; error: TablemqError }>): TablemqError {
  const details = tries.map(({ base, error }) => `${base}: ${networkDetail(error.cause)}`).join("; ");
  const last = tries[tries.length - 1]!.error;
  return new TablemqError(0, last.code, `${method} ${path}: cannot reach any of the ${tries.length} servers (${details})`, undefined, {
    cause: last.cause,
  });
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `retry-after` is seconds or an HTTP date; returns milliseconds. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
