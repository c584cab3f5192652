/**
 * The tablemq client: tables, publish, ack, postpone and extend over HTTP, subscriptions over WebSocket.
 *
 *   const client = new TablemqClient({ url: "http://127.0.0.1:8080" }); // or several nodes: ["http://mq-1:8080", ...]
 *   await client.createTable("orders", { ackWaitMs: 10_000 });
 *   await client.publish("orders", [{ payload: { order: 1 } }]);
 *   for await (const msg of client.subscribe("orders")) { handle(msg.payload); msg.ack(); }
 *
 * Every failure is a TablemqError (`status`, `code`, `message`) with the API's error code.
 */
import type { WakeNote } from "../model/wake.js";
import { checkWhole, HttpTransport, type HttpOptions, invalidArgument, TablemqError, tablePath } from "./http.js";
import type { FetchLike } from "./node-fetch.js";
import type { ServerUrls } from "./servers.js";
import { Subscription, type SubscribeOptions } from "./subscription.js";
import { newId } from "./ids.js";
import { type Handler, type WorkOptions, Worker } from "./worker.js";
import { reconnectDelay } from "./backoff.js";
import type { AckAnswer, EnqueueAnswer, ExtendAnswer, FailAnswer, PostponeAnswer, ReleaseAnswer } from "../wire.js";
import type {
  AckReceiptsResult,
  BrowsedMessage,
  BrowseOptions,
  BrowsePage,
  DeadLetterPage,
  ExtendResult,
  FailReceiptsResult,
  PostponeReceiptsResult,
  PublishMessage,
  PublishResult,
  RedriveResult,
  TableDescription,
  TablePage,
  TableOptions,
  Webhook,
  WebhookSettings,
} from "./types.js";

export interface ClientOptions {
  /**
   * Base URL of the server, e.g. `http://127.0.0.1:8080`; or a list of them, for several tablemq nodes on one
   * database (`["http://mq-1:8080", "http://mq-2:8080"]`). With a list, the client starts at a random entry
   * (clients spread over the nodes) and goes round robin from there:
   * - HTTP requests go to one server until it gives no answer; then to the next. A request that cannot have
   *   written anything (the connection was refused, the name did not resolve: nothing was sent; or a GET)
   *   is sent to the next server at once, each server tried once; a write that may have reached the dead
   *   server (reset after sending, timeout) is not sent again: it fails with outcome `unknown`, as with one
   *   server, and publish's `retry` resends it, with the same ids, to the next server.
   * - A subscription starts on the client's current server and moves to the next one at every reconnect,
   *   with the usual backoff: the subscribers of a node that died go to the others.
   */
  url: ServerUrls;
  /** Sent as `authorization: Bearer <token>` on every request and on the WebSocket upgrade. */
  token?: string;
  /** Per HTTP request (and for the WebSocket handshake); default 30 s. */
  timeoutMs?: number;
  /** A fetch implementation (the global `fetch` fits); by default Node's http/https with keep-alive. */
  fetch?: FetchLike;
  /** Most messages in one publish request (the server's TABLEMQ_MAX_BATCH, default 1000): larger publishes are split. */
  maxBatch?: number;
}

/** Per publish. */
export interface PublishOptions {
  /**
   * Send a request again while its error is retryable (`attempts` tries in all, default 1), after a jittered
   * backoff from 100 ms to 5 s or the server's retry-after. Messages without an id get one first (`newId()`),
   * so a resend after an unknown outcome cannot write a message twice.
   */
  retry?: { attempts?: number };
}

function withReason<B extends object>(body: B, reason: string | undefined): B & { reason?: string } {
  return reason === undefined ? body : { ...body, reason };
}

const PUBLISH_RETRY_DELAYS = { minDelayMs: 100, maxDelayMs: 5_000 };

export class TablemqClient {
  private readonly http: HttpTransport;
  private readonly timeoutMs: number;
  private readonly maxBatch: number;

  constructor(options: ClientOptions) {
    checkWhole("maxBatch", options.maxBatch, 1);
    this.maxBatch = options.maxBatch ?? 1000;
    const httpOptions: HttpOptions = { url: options.url, timeoutMs: options.timeoutMs ?? 30_000 };
    if (options.token !== undefined) httpOptions.token = options.token;
    if (options.fetch !== undefined) httpOptions.fetch = options.fetch;
    this.http = new HttpTransport(httpOptions);
    this.timeoutMs = httpOptions.timeoutMs!;
  }

  /** The base URL requests go to now, normalized (with several servers: the one the client is on). */
  get url(): string {
    return this.http.baseUrl;
  }

  /**
   * Enqueues messages. Resolves once they are committed, with their ids in request order; ids that already
   * existed are listed in `duplicates` and not inserted again. More than `maxBatch` messages go in several
   * requests, in order: if one fails, the messages before it are written (the error says how many).
   */
  async publish<T = unknown>(
    table: string,
    messages: PublishMessage<T> | ReadonlyArray<PublishMessage<T>>,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    let list = Array.isArray(messages) ? messages : [messages as PublishMessage<T>];
    list.forEach((m, i) => {
      if (m === null || typeof m !== "object" || m.payload === undefined) {
        throw invalidArgument(`messages[${i}].payload`, "is required (any JSON value)");
      }
    });
    checkWhole("retry.attempts", options.retry?.attempts, 1);
    const attempts = options.retry?.attempts ?? 1;
    // Retried publishes carry ids made before the first try: a resend after an unknown outcome writes nothing
    // twice, and a duplicate of an id made here is that earlier try's own write, not news for the caller.
    const made = new Set<string>();
    if (attempts > 1) {
      list = list.map((m) => {
        if (m.id !== undefined) return m;
        const id = newId();
        made.add(id);
        return { ...m, id };
      });
    }
    const result: PublishResult = { ids: [], duplicates: [] };
    for (let at = 0; at < list.length; at += this.maxBatch) {
      let body: EnqueueAnswer;
      try {
        const part = at === 0 && list.length <= this.maxBatch ? list : list.slice(at, at + this.maxBatch);
        body = await this.sendPublish(table, part, attempts, made);
      } catch (err) {
        if (at === 0 || !(err instanceof TablemqError)) throw err;
        const written = `; the first ${at} of the ${list.length} messages were written (ids ${result.ids[0]}…)`;
        throw new TablemqError(err.status, err.code, err.message + written, err.retryAfterMs, { cause: err.cause }, err.ids);
      }
      result.ids.push(...body.ids);
      result.duplicates.push(...(body.duplicates ?? []));
    }
    return result;
  }

  /** One publish request, sent again (`attempts` in all) while its error is retryable. */
  private async sendPublish(
    table: string,
    messages: readonly unknown[],
    attempts: number,
    made: ReadonlySet<string>,
  ): Promise<EnqueueAnswer> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { body } = await this.http.request<EnqueueAnswer>("POST", tablePath(table, "/messages"), { messages });
        if (attempt > 1 && body.duplicates) body.duplicates = body.duplicates.filter((id) => !made.has(id));
        return body;
      } catch (err) {
        if (attempt >= attempts || !(err instanceof TablemqError) || !err.retryable) throw err;
        const delayMs = Math.max(err.retryAfterMs ?? 0, reconnectDelay(attempt - 1, PUBLISH_RETRY_DELAYS));
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  /**
   * Tells the server that rows of `table` were written or changed outside it (in the application's own
   * transaction, `tablemq/sql`): it looks for due rows now, again at each `dueAt`, and drops the `forget`
   * ids from its cache; the other nodes hear it over their bus. Send it after the commit. Without it the
   * server finds the rows at its next poll.
   */
  async wake(table: string, note: WakeNote = {}): Promise<void> {
    await this.http.request<unknown>("POST", tablePath(table, "/wake"), note);
  }

  /** Acks ids; returns how many this call acked (acking an acked or unknown id is not an error). */
  async ack(table: string, ids: readonly string[]): Promise<number> {
    const { body } = await this.http.request<AckAnswer>("POST", tablePath(table, "/ack"), { ids });
    return body.acked;
  }

  /** Postpones ids by `delayMs`, or by the table's backoff when absent; returns how many were postponed. */
  async postpone(table: string, ids: readonly string[], delayMs?: number): Promise<number> {
    const body: { ids: readonly string[]; delayMs?: number } = { ids };
    if (delayMs !== undefined) body.delayMs = delayMs;
    const res = await this.http.request<PostponeAnswer>("POST", tablePath(table, "/postpone"), body);
    return res.body.postponed;
  }

  /**
   * Fenced ack by receipts (`msg.receipt`): acks only messages whose delivery named by the receipt is still
   * current; the receipts of messages delivered again since are returned in `stale` and change nothing.
   */
  async ackReceipts(table: string, receipts: readonly string[]): Promise<AckReceiptsResult> {
    const { body } = await this.http.request<AckAnswer>("POST", tablePath(table, "/ack"), { receipts });
    return { acked: body.acked, stale: body.stale ?? [] };
  }

  /** Fenced postpone by receipts, as `postpone`; stale receipts are returned and change nothing. */
  async postponeReceipts(table: string, receipts: readonly string[], delayMs?: number): Promise<PostponeReceiptsResult> {
    const body: { receipts: readonly string[]; delayMs?: number } = { receipts };
    if (delayMs !== undefined) body.delayMs = delayMs;
    const res = await this.http.request<PostponeAnswer>("POST", tablePath(table, "/postpone"), body);
    return { postponed: res.body.postponed, stale: res.body.stale ?? [] };
  }

  /**
   * Dead-letters ids at once, whatever attempts they have left: a consumer found they can never succeed.
   * `reason` (at most 1024 characters) is kept with each dead letter. Returns how many were moved.
   */
  async fail(table: string, ids: readonly string[], reason?: string): Promise<number> {
    return (await this.http.request<FailAnswer>("POST", tablePath(table, "/fail"), withReason({ ids }, reason))).body.failed;
  }

  /** Fenced fail by receipts, as `fail`; stale receipts are returned and change nothing. */
  async failReceipts(table: string, receipts: readonly string[], reason?: string): Promise<FailReceiptsResult> {
    const { body } = await this.http.request<FailAnswer>("POST", tablePath(table, "/fail"), withReason({ receipts }, reason));
    return { failed: body.failed, stale: body.stale ?? [] };
  }

  /**
   * Extends leases (SQS's ChangeMessageVisibility): messages whose delivery is still current are not due
   * again before `byMs` from now (never earlier than they were). `extended` counts those whose due time moved, `unchanged` lists those already due later; `stale` lists the
   * receipts of messages delivered again since. A receipt in neither names an acked (or unknown) message.
   */
  async extend(table: string, receipts: readonly string[], byMs: number): Promise<ExtendResult> {
    const { body } = await this.http.request<ExtendAnswer>("POST", tablePath(table, "/extend"), {
      receipts,
      byMs,
    });
    return { extended: body.extended, stale: body.stale ?? [], unchanged: body.unchanged ?? [] };
  }

  /**
   * Hands deliveries back unprocessed (by receipt): those still current are due again at once, and the
   * delivery does not count toward maxAttempts. What a closing subscription does with what it never handled.
   */
  async release(table: string, receipts: readonly string[]): Promise<ReleaseAnswer> {
    return (await this.http.request<ReleaseAnswer>("POST", tablePath(table, "/release"), { receipts })).body;
  }

  /** Creates the table, or changes the given options when it exists (`created` tells which). */
  async createTable(table: string, options: Partial<TableOptions> = {}): Promise<{ created: boolean; table: TableDescription }> {
    const { status, body } = await this.http.request<TableDescription>("PUT", tablePath(table), options);
    return { created: status === 201, table: body };
  }

  /** Every table the token may see, with its stats: listTablesPage followed to the end, 1000 a page. */
  async listTables(): Promise<TableDescription[]> {
    const all: TableDescription[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.listTablesPage({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      all.push(...(page.tables as TableDescription[])); // asked with stats: every table has them
      cursor = page.next;
    } while (cursor !== undefined);
    return all;
  }

  /**
   * One page of the tables, by name: `limit` 1..1000 (default 100), `cursor` the previous page's `next`;
   * `stats: false` leaves out the counts (then the server reads nothing from the database).
   */
  async listTablesPage(options: { limit?: number; cursor?: string; stats?: boolean } = {}): Promise<TablePage> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor !== undefined) query.set("cursor", options.cursor);
    if (options.stats === false) query.set("stats", "false");
    const qs = query.size > 0 ? `?${query.toString()}` : "";
    return (await this.http.request<TablePage>("GET", `/v1/tables${qs}`)).body;
  }

  async describeTable(table: string): Promise<TableDescription> {
    return (await this.http.request<TableDescription>("GET", tablePath(table))).body;
  }

  async dropTable(table: string): Promise<void> {
    await this.http.request<unknown>("DELETE", tablePath(table));
  }

  /** Dead letters of the table, newest first; pass `next` back as `cursor` for the following page. */
  async listDead(table: string, options: { limit?: number; cursor?: string } = {}): Promise<DeadLetterPage> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor !== undefined) query.set("cursor", options.cursor);
    const qs = query.size > 0 ? `?${query.toString()}` : "";
    return (await this.http.request<DeadLetterPage>("GET", tablePath(table, `/dead${qs}`))).body;
  }

  /**
   * The table's unacked messages, read without delivering them (nothing about them changes), soonest due
   * first or newest first; pass `next` back as `cursor` for the following page.
   */
  async browse(table: string, options: BrowseOptions = {}): Promise<BrowsePage> {
    const query = new URLSearchParams();
    if (options.state !== undefined) query.set("state", options.state);
    if (options.order !== undefined) query.set("order", options.order);
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor !== undefined) query.set("cursor", options.cursor);
    const qs = query.size > 0 ? `?${query.toString()}` : "";
    return (await this.http.request<BrowsePage>("GET", tablePath(table, `/messages${qs}`))).body;
  }

  /** One unacked message by id, without delivering it; a 404 `message_not_found` when it is unknown or acked. */
  async getMessage(table: string, id: string): Promise<BrowsedMessage> {
    return (await this.http.request<BrowsedMessage>("GET", tablePath(table, `/messages/${encodeURIComponent(id)}`))).body;
  }

  /** Stops delivery from the table on every node (enqueues go on); returns its description. */
  async pauseTable(table: string): Promise<TableDescription> {
    return (await this.http.request<TableDescription>("POST", tablePath(table, "/pause"))).body;
  }

  /** Starts delivery again after pauseTable; returns its description. */
  async resumeTable(table: string): Promise<TableDescription> {
    return (await this.http.request<TableDescription>("POST", tablePath(table, "/resume"))).body;
  }

  /** Makes an unacked message due now; a 404 `message_not_found` when it is unknown or acked. */
  async deliverNow(table: string, id: string): Promise<void> {
    await this.http.request<unknown>("POST", tablePath(table, `/messages/${encodeURIComponent(id)}/deliver`));
  }

  /** Deletes an unacked message outright; a 404 `message_not_found` when it is unknown or acked. */
  async deleteMessage(table: string, id: string): Promise<void> {
    await this.http.request<unknown>("DELETE", tablePath(table, `/messages/${encodeURIComponent(id)}`));
  }

  /** Deletes every unacked message of the table; returns how many. */
  async purgeTable(table: string): Promise<number> {
    return (await this.http.request<{ purged: number }>("POST", tablePath(table, "/purge"))).body.purged;
  }

  /** Moves dead letters (the given ids, or all) back into the table, due now with epoch 0. */
  async redrive(table: string, which: { ids: readonly string[] } | { all: true }): Promise<RedriveResult> {
    return (await this.http.request<RedriveResult>("POST", tablePath(table, "/redrive"), which)).body;
  }

  /** Creates or replaces a webhook subscriber of the table (`created` tells which). */
  async putWebhook(table: string, name: string, settings: WebhookSettings): Promise<{ created: boolean; webhook: Webhook }> {
    const { status, body } = await this.http.request<Webhook>("PUT", tablePath(table, `/webhooks/${encodeURIComponent(name)}`), settings);
    return { created: status === 201, webhook: body };
  }

  async listWebhooks(table: string): Promise<Webhook[]> {
    return (await this.http.request<{ webhooks: Webhook[] }>("GET", tablePath(table, "/webhooks"))).body.webhooks;
  }

  async getWebhook(table: string, name: string): Promise<Webhook> {
    return (await this.http.request<Webhook>("GET", tablePath(table, `/webhooks/${encodeURIComponent(name)}`))).body;
  }

  async deleteWebhook(table: string, name: string): Promise<void> {
    await this.http.request<unknown>("DELETE", tablePath(table, `/webhooks/${encodeURIComponent(name)}`));
  }

  /** True when the server answers /readyz with 200 (database reachable, engine open). */
  async ready(): Promise<boolean> {
    try {
      await this.http.request<unknown>("GET", "/readyz");
      return true;
    } catch (err) {
      if (err instanceof TablemqError) return false;
      throw err;
    }
  }

  /**
   * Runs `handler` for the table's messages, `concurrency` at a time: acked when it resolves, retried when
   * it throws, dead-lettered at once when it throws `Unrecoverable`; leases extended while it runs. See Worker.
   */
  work<T = unknown>(table: string, handler: Handler<T>, options: WorkOptions = {}): Worker<T> {
    return new Worker<T>((subscribeOptions) => this.subscribe<T>(table, subscribeOptions), handler, options);
  }

  /** The table as a typed handle: publish, subscribe and work with payloads of type T. */
  queue<T = unknown>(table: string): Queue<T> {
    return new Queue<T>(this, table);
  }

  /**
   * Opens a WebSocket subscription to the table. Iterate it (`for await`), or pass `onMessage`. See
   * Subscription for acks, reconnects and errors.
   */
  subscribe<T = unknown>(table: string, options: SubscribeOptions<T> = {}): Subscription<T> {
    checkWhole("maxInFlight", options.maxInFlight, 1);
    const query = options.maxInFlight === undefined ? "" : `?maxInFlight=${options.maxInFlight}`;
    return new Subscription<T>(
      table,
      {
        servers: this.http.servers.fork(),
        path: tablePath(table, "/subscribe") + query,
        headers: this.http.authHeaders(),
        handshakeTimeoutMs: this.timeoutMs,
        requestTimeoutMs: this.timeoutMs,
        http: {
          ack: (ids) => this.ack(table, ids),
          postpone: (ids, delayMs) => this.postpone(table, ids, delayMs),
          ackReceipts: async (receipts) => (await this.ackReceipts(table, receipts)).stale,
          postponeReceipts: async (receipts, delayMs) => (await this.postponeReceipts(table, receipts, delayMs)).stale,
          extend: (receipts, byMs) => this.extend(table, receipts, byMs),
          release: async (receipts) => {
            const { released, stale } = await this.release(table, receipts);
            return { count: released, stale };
          },
          fail: async (receipts, reason) => {
            const { failed, stale } = await this.failReceipts(table, receipts, reason);
            return { count: failed, stale };
          },
          confirmAck: async (key, fenced) => {
            if (!fenced) return { count: await this.ack(table, [key]), stale: [] };
            const { acked, stale } = await this.ackReceipts(table, [key]);
            return { count: acked, stale };
          },
        },
      },
      options,
    );
  }
}

/** One table with a payload type: `client.queue<Order>("orders")`. Each method is the client's, for this table. */
export class Queue<T> {
  constructor(
    private readonly client: TablemqClient,
    readonly name: string,
  ) {}

  publish(messages: PublishMessage<T> | ReadonlyArray<PublishMessage<T>>, options?: PublishOptions): Promise<PublishResult> {
    return this.client.publish<T>(this.name, messages, options);
  }

  subscribe(options?: SubscribeOptions<T>): Subscription<T> {
    return this.client.subscribe<T>(this.name, options);
  }

  work(handler: Handler<T>, options?: WorkOptions): Worker<T> {
    return this.client.work<T>(this.name, handler, options);
  }

  describe(): Promise<TableDescription> {
    return this.client.describeTable(this.name);
  }
}
