/**
 * This node's membership of the nodes sharing one database: it registers itself (tablemq_nodes) with a
 * slot unique among live nodes (the node bits of its message ids), heartbeats on a timer, and keeps the
 * list of live peers: the other nodes whose heartbeat is fresher than staleAfterMs.
 *
 * One heartbeat runs at a time: the next is scheduled heartbeatMs after the previous one ended. Each
 * records this node's heartbeat and then reads every node. A heartbeat that finds this node's row gone
 * (another node deleted it as stale, e.g. after this process was paused) joins again, keeping its slot if
 * it is still free; `onSlotChanged` says when it is not. A heartbeat that fails (database down) is logged
 * once per outage and tried again at the next tick; the peers stay as last read, since nothing newer is
 * known. Nothing a timer runs throws.
 */
import type { Clock, TimerHandle } from "../clock.js";
import type { Logger } from "../logger.js";
import type { NodeRecord, NodeStore, NodeUpdate } from "../store/cluster-types.js";

export const DEFAULT_HEARTBEAT_MS = 2_000;

export interface MembershipOptions {
  store: NodeStore;
  clock: Clock;
  log: Logger;
  /** This node's id, unique per process (e.g. a random UUID). */
  id: string;
  /** Where peers reach this node. */
  url?: string;
  version: string;
  /** Whether it is connected to the Redis bus (update() changes it). */
  redis: boolean;
  /** Between heartbeats (default 2 s). */
  heartbeatMs?: number;
  /** A node whose last heartbeat is older than this is dead: not a peer, its slot free (default 3 heartbeats). */
  staleAfterMs?: number;
  /** The live peers changed: one joined, left or went stale, or changed its url or redis flag. */
  onPeersChanged?: (peers: NodeRecord[]) => void;
  /** This node joined again and got another slot than it had (its old one was taken meanwhile). */
  onSlotChanged?: (slot: number, previous: number) => void;
}

export class Membership {
  readonly id: string;
  private readonly store: NodeStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly heartbeatMs: number;
  private readonly staleAfterMs: number;
  private readonly startedAt: number;
  private readonly version: string;
  private url: string | null;
  private redis: boolean;
  /** Changes for the next heartbeat to write. */
  private pending: NodeUpdate = {};
  private slotValue: number | undefined;
  private heartbeatAt = 0;
  private live: NodeRecord[] = [];
  /** When each peer was last heard on the bus (which says its bus is up), this node's clock. */
  private readonly heard = new Map<string, number>();
  private liveSignature = "[]";
  private joined = false;
  private timer: TimerHandle | undefined;
  private beating: Promise<void> | undefined;
  private outage = false;
  private closed = false;

  constructor(private readonly options: MembershipOptions) {
    this.id = options.id;
    this.store = options.store;
    this.clock = options.clock;
    this.log = options.log;
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.staleAfterMs = options.staleAfterMs ?? 3 * this.heartbeatMs;
    this.version = options.version;
    this.url = options.url ?? null;
    this.redis = options.redis;
    this.startedAt = options.clock.now();
  }

  /**
   * Registers this node and claims its slot, reads the peers, and starts heartbeating. Rejects when the
   * database cannot be reached or every slot is held (nothing keeps running then; call it again). A second
   * call returns the slot it has.
   */
  async join(): Promise<number> {
    if (this.closed) throw new Error("membership is closed");
    if (this.joined && this.slotValue !== undefined) return this.slotValue;
    const now = this.clock.now();
    this.slotValue = await this.store.joinNode(this.record(), now, now - this.staleAfterMs, this.slotValue);
    this.heartbeatAt = now;
    this.log.info({ node: this.id, slot: this.slotValue }, "joined the cluster");
    await this.readPeers(now);
    this.joined = true;
    this.schedule();
    return this.slotValue;
  }

  /** This node's slot (undefined before join()). */
  get slot(): number | undefined {
    return this.slotValue;
  }

  /**
   * The other live nodes, by slot, as last read; a peer heard on the bus since its row was written has its
   * bus up, whatever the row says (the row catches up with its next heartbeat).
   */
  peers(): NodeRecord[] {
    return this.live.map((n) => ({ ...n, redis: this.busUp(n) }));
  }

  private busUp(n: NodeRecord): boolean {
    return n.redis || (this.heard.get(n.id) ?? -Infinity) >= n.heartbeatAt;
  }

  /** A message came from peer `id` over the bus: its bus is up. Tells onPeersChanged when that is news. */
  heardFrom(id: string): void {
    const peer = this.live.find((n) => n.id === id);
    if (!peer) return;
    const before = this.busUp(peer);
    this.heard.set(id, this.clock.now());
    if (!before) this.notify(() => this.options.onPeersChanged?.(this.peers()));
  }

  get hasPeers(): boolean {
    return this.live.length > 0;
  }

  /** Every live node, this one included, by slot (empty before join()). */
  nodes(): NodeRecord[] {
    const self = this.self();
    return (self ? [self, ...this.peers()] : this.peers()).sort((a, b) => a.slot - b.slot);
  }

  /** This node as it registered (undefined before join()). */
  self(): NodeRecord | undefined {
    if (this.slotValue === undefined) return undefined;
    return { ...this.record(), slot: this.slotValue, heartbeatAt: this.heartbeatAt };
  }

  /** Changes this node's url or redis flag; written with the next heartbeat, at once for a new redis flag. */
  update(fields: NodeUpdate): void {
    if (fields.url !== undefined) this.url = fields.url;
    const redisChanged = fields.redis !== undefined && fields.redis !== this.redis;
    if (fields.redis !== undefined) this.redis = fields.redis;
    this.pending = { ...this.pending, ...fields };
    if (redisChanged) this.beatSoon();
  }

  /** The next heartbeat now rather than at its time (peers learn of a change to this node's bus sooner). */
  private beatSoon(): void {
    if (this.closed || this.timer === undefined) return; // not joined yet, or a heartbeat is running (it writes pending)
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.beating = this.beat().finally(() => {
      this.beating = undefined;
      this.schedule();
    });
  }

  /** Stops heartbeating and deletes this node's row (its slot is free at once). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.beating;
    if (this.slotValue === undefined) return;
    try {
      await this.store.leaveNode(this.id);
    } catch (err) {
      this.log.warn({ err, node: this.id }, "could not leave the cluster; this node's row goes stale");
    }
  }

  private record(): Omit<NodeRecord, "slot" | "heartbeatAt"> {
    return { id: this.id, url: this.url, version: this.version, startedAt: this.startedAt, redis: this.redis };
  }

  private schedule(): void {
    if (this.closed || this.timer !== undefined) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.beating = this.beat().finally(() => {
        this.beating = undefined;
        this.schedule();
      });
    }, this.heartbeatMs);
  }

  /** One heartbeat; never rejects. */
  private async beat(): Promise<void> {
    const now = this.clock.now();
    const fields = this.pending;
    this.pending = {};
    try {
      if (await this.store.heartbeat(this.id, now, fields)) this.heartbeatAt = now;
      else await this.rejoin(now);
      if (this.closed) return;
      await this.readPeers(now);
      if (this.outage) this.log.info({ node: this.id }, "cluster heartbeats are written again");
      this.outage = false;
    } catch (err) {
      this.pending = { ...fields, ...this.pending }; // written with the next one that gets through
      if (!this.outage) this.log.warn({ err, node: this.id }, "could not write this node's heartbeat; retrying");
      this.outage = true;
    }
  }

  private async rejoin(now: number): Promise<void> {
    const previous = this.slotValue;
    const slot = await this.store.joinNode(this.record(), now, now - this.staleAfterMs, previous);
    this.slotValue = slot;
    this.heartbeatAt = now;
    this.log.warn({ node: this.id, slot, previous }, "this node's row was gone (deleted as stale); joined again");
    if (previous !== undefined && slot !== previous) this.notify(() => this.options.onSlotChanged?.(slot, previous));
  }

  private async readPeers(now: number): Promise<void> {
    const nodes = await this.store.listNodes();
    const live = nodes.filter((n) => n.id !== this.id && n.heartbeatAt >= now - this.staleAfterMs).sort((a, b) => a.slot - b.slot);
    const signature = JSON.stringify(live.map((n) => [n.id, n.slot, n.url, n.version, n.startedAt, n.redis]));
    this.live = live;
    if (signature === this.liveSignature) return;
    this.liveSignature = signature;
    this.notify(() => this.options.onPeersChanged?.(this.peers()));
  }

  /** A callback's error is logged, never thrown into a timer. */
  private notify(call: () => void): void {
    try {
      call();
    } catch (err) {
      this.log.error({ err, node: this.id }, "a membership callback threw");
    }
  }
}
