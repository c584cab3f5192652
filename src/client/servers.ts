/**
 * The servers a client talks to: one URL, or several tablemq nodes that share one database (issue 25).
 *
 * The list starts at a random entry, so clients given the same list spread over the nodes instead of all
 * landing on the first; from there it goes round robin, in the order given.
 * - HTTP: every request goes to the client's current server. A request that gets no answer moves the
 *   current server on to the next in the list, for the requests after it; the request itself is sent to
 *   the next server at once only when it cannot have changed anything there (`afterFailure`).
 * - WebSocket: a subscription starts on the client's current server and, at every reconnect after a drop,
 *   moves to the next server of the list (its own round, apart from the client's), so the subscribers of a
 *   node that died reconnect to the others. A subscription stays where it is as long as its socket lives.
 */

/**
 * The `url` option: the server's base URL (`http://127.0.0.1:8080`, a path prefix is kept), or the base
 * URLs of several nodes on one database, e.g. `["http://mq-1:8080", "http://mq-2:8080"]`.
 */
export type ServerUrls = string | readonly string[];

/** A rotation over servers' base URLs (normalized, distinct, at least one). */
export class ServerList {
  readonly urls: readonly string[];
  private index: number;

  /** Starts at `start`, or at a random entry (`random` returns [0, 1) like Math.random). */
  constructor(urls: readonly string[], start: number | { random: () => number } = { random: Math.random }) {
    if (urls.length === 0) throw new RangeError("a server list needs at least one URL");
    this.urls = [...urls];
    const at = typeof start === "number" ? start : Math.floor(start.random() * urls.length);
    this.index = Math.min(urls.length - 1, Math.max(0, at));
  }

  /** Where requests go now. */
  get current(): string {
    return this.urls[this.index]!;
  }

  /** The servers one request tries, in order: the current one, then the others round robin. */
  order(): string[] {
    return [...this.urls.slice(this.index), ...this.urls.slice(0, this.index)];
  }

  /**
   * `failed` did not answer: the current server becomes the one after it. Unless the current server is
   * already another one: a request that failed at the same time has moved on, and moving again would skip
   * a server nobody tried.
   */
  moveOn(failed: string): void {
    if (this.current === failed) this.index = (this.index + 1) % this.urls.length;
  }

  /** A rotation of its own (a subscription's), starting at this one's current server. */
  fork(): ServerList {
    return new ServerList(this.urls, this.index);
  }
}

/** Methods whose request changes nothing on the server: sending one again is always safe. */
const READS = new Set(["GET", "HEAD"]);

/** What afterFailure reads of a TablemqError (http.ts): its status (0 when nothing answered), code and outcome. */
export interface FailedRequest {
  readonly status: number;
  readonly code: string;
  readonly outcome?: string;
}

/**
 * What a failed request means for the list, given its error:
 * - "resend": it reached no server, or it is a read: it goes to the next server at once. A request that
 *   never left (connection refused, DNS failure, unreachable host: outcome `not_written`), or a GET whose
 *   connection dropped before the answer.
 * - "move": no answer came and a write may have happened (a connection reset after the request was sent,
 *   a timeout): it is not sent again, the caller gets the error with outcome `unknown` as with one server
 *   (publish's `retry` resends it with the ids it made before the first try, so nothing is written twice);
 *   the requests after it go to the next server.
 * - "stay": the server answered, whatever the status (a 503 too: nodes share the database, and a 503 or
 *   a 429 is for the caller's retry rules), or the request was refused before anything was sent.
 */
export function afterFailure(error: FailedRequest, method: string): "resend" | "move" | "stay" {
  if (error.status !== 0) return "stay";
  if (error.code === "timeout") return "move";
  if (error.code !== "unavailable") return "stay";
  return error.outcome === "not_written" || READS.has(method.toUpperCase()) ? "resend" : "move";
}
