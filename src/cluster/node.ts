import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Clock, TimerHandle } from "../clock.js";
import type { Logger } from "../logger.js";
import type { NodeRecord, NodeStore } from "../store/cluster-types.js";
import { type BusEvent, busChannelOf } from "./bus-events.js";
import { Membership } from "./membership.js";
import { type BusStats, type BusStatus, RedisBus } from "./redis-bus.js";

/** What a node's events and its peers' comings and goings change here (the Engine). */
export interface PeerAware {
  applyPeerEvents(events: readonly BusEvent[]): void;
  resync(): void;
  setPollCap(ms: number | undefined): void;
  setShared(shared: boolean): void;
  peerLost(): void;
  setIdNode(node: number): void;
}

export interface ClusterNodeOptions {
  store: NodeStore;
  clock: Clock;
  log: Logger;
  version: string;
  /** The bus's Redis; undefined: none (nodes find each other's rows by polling). */
  redisUrl?: string;
  /** Channels are per database: nodes on another database sharing the Redis do not hear each other. */
  database: string;
  /** Longest time between polls while peers are live and the bus does not wake this node. */
  peerPollMs: number;
  heartbeatMs: number;
  /** A peer's webhook configuration changed: read them again. */
  onWebhooksChanged?: () => void;
  /** The bus's state changed (metrics). */
  onBusStatus?: (status: BusStatus) => void;
}

/** What /readyz and GET /v1/nodes say about the node's place among its peers. */
export interface ClusterView {
  id: string;
  /** This node's slot: the node bits of its message ids. */
  slot: number | undefined;
  /** Live nodes, this one included. */
  nodes: number;
  /** "off" when no Redis is configured. */
  bus: BusStatus | { state: "off" };
  /**
   * How rows other nodes commit reach this one: "bus" (woken at once), "poll" (every peerPollMs: peers are
   * live and this node's bus, or a peer's, is off or down), "alone" (no live peers: each table at its own
   * poll interval).
   */
  wakeups: "bus" | "poll" | "alone";
}

/**
 * This server as one of several nodes on one database (issue 25): its membership (a heartbeat row, a
 * slot for its message ids, the live peers) and its end of the Redis bus (seed 003). It tells the engine
 * what it hears:
 *  - a peer's events: rows due (poll now or then), tables changed (read the schema), webhooks changed;
 *  - a resync (bus messages may have been lost: overflow, reconnect): every table polls once;
 *  - while peers are live and the bus is not up, every table polls at least every peerPollMs, so a row
 *    committed on another node waits at most that long (and the server says so: /readyz, a warning);
 *  - a peer that stopped heartbeating: its deliveries fall due within an ack wait, and every table looks then.
 * None of this is needed for correctness: claims (manager/postponer.ts) keep each message to one node per
 * ack wait, whatever the bus does. The bus only makes other nodes' rows arrive in milliseconds.
 */
export class ClusterNode {
  readonly id = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  private readonly membership: Membership;
  private readonly bus: RedisBus | undefined;
  private target: PeerAware | undefined;
  private peerIds = new Set<string>();
  private warnedAlone = false;
  private joinTimer: TimerHandle | undefined;
  private closed = false;

  constructor(private readonly options: ClusterNodeOptions) {
    const { store, clock, log, version, redisUrl } = options;
    this.membership = new Membership({
      store,
      clock,
      log,
      id: this.id,
      version,
      redis: false,
      heartbeatMs: options.heartbeatMs,
      onPeersChanged: (peers) => this.peersChanged(peers),
      onSlotChanged: (slot, previous) => {
        // Paused (or cut off) longer than a node's staleness, and another node took our slot meanwhile.
        log.warn({ slot, previous }, "this node joined again with another slot: message ids use it from now on");
        this.target?.setIdNode(slot);
      },
    });
    if (redisUrl) {
      this.bus = new RedisBus({
        url: redisUrl,
        serverId: this.id,
        channel: busChannelOf(options.database),
        clock,
        log,
        onEvents: (events, from) => this.onEvents(events, from),
        onResync: (why) => {
          log.debug({ why }, "bus resync: every table polls once");
          this.target?.resync();
          options.onWebhooksChanged?.();
        },
        onStatus: (status) => this.busStatus(status),
      });
    }
  }

  /**
   * Joins the nodes (the slot is the node bits of message ids) and connects the bus; call before the engine.
   * A database that does not answer does not stop the server (it starts and serves once the database is
   * back, as the engine does): the join is tried again every heartbeat, and the slot, undefined until then,
   * reaches the engine when it comes (message ids made meanwhile could not be written anyway).
   */
  async start(): Promise<number | undefined> {
    let slot: number | undefined;
    try {
      slot = await this.membership.join();
    } catch (err) {
      this.options.log.warn({ err }, "could not join the nodes on the database; trying again every heartbeat");
      this.joinLater();
    }
    await this.bus?.open();
    return slot;
  }

  /** From now on the engine hears the peers; it polls once in case it missed something meanwhile. */
  attach(target: PeerAware): void {
    this.target = target;
    if (this.membership.slot !== undefined) target.setIdNode(this.membership.slot);
    this.peersChanged(this.membership.peers());
    target.resync();
  }

  /** Tells the other nodes (best effort: dropped while the bus is down or absent). */
  publish(event: BusEvent): void {
    this.bus?.publish(event);
  }

  /** Every live node, this one included, by slot (GET /v1/nodes). */
  nodes(): NodeRecord[] {
    return this.membership.nodes();
  }

  /** This node as it registered (undefined before start()). */
  self(): NodeRecord | undefined {
    return this.membership.self();
  }

  /** Where others reach this node: written with the next heartbeat. */
  setUrl(url: string): void {
    this.membership.update({ url });
  }

  view(): ClusterView {
    return {
      id: this.id,
      slot: this.membership.slot,
      nodes: this.membership.nodes().length,
      bus: this.bus ? this.bus.status() : { state: "off" },
      wakeups: this.wakeups(),
    };
  }

  get busStats(): BusStats | undefined {
    return this.bus?.stats;
  }

  async close(): Promise<void> {
    this.target = undefined;
    this.closed = true;
    if (this.joinTimer !== undefined) this.options.clock.clearTimeout(this.joinTimer);
    await this.bus?.close();
    await this.membership.close();
  }

  /**
   * "bus" only while this node's bus is up and every live peer says its own is (the flag each heartbeat
   * writes): a peer cut off from Redis publishes nothing, so its rows would otherwise wait for our periodic
   * poll. (A fault test saw 10 s with one node's bus cut and the others' up.)
   */
  private joinLater(): void {
    if (this.closed) return;
    this.joinTimer = this.options.clock.setTimeout(() => {
      this.joinTimer = undefined;
      this.membership.join().then(
        (slot) => {
          if (this.closed) return;
          this.options.log.info({ slot }, "joined the nodes on the database");
          this.target?.setIdNode(slot);
          this.peersChanged(this.membership.peers());
        },
        () => this.joinLater(),
      );
    }, this.options.heartbeatMs);
  }

  private wakeups(): ClusterView["wakeups"] {
    const peers = this.membership.peers();
    if (peers.length === 0) return "alone";
    return this.bus?.status().state === "up" && peers.every((p) => p.redis) ? "bus" : "poll";
  }

  private onEvents(events: readonly BusEvent[], from: string): void {
    this.membership.heardFrom(from); // the sender's bus is up
    this.target?.applyPeerEvents(events);
    if (events.some((e) => e.kind === "webhooks")) this.options.onWebhooksChanged?.();
  }

  private busStatus(status: BusStatus): void {
    this.membership.update({ redis: status.state === "up" });
    // The peers hear at once that this node's bus is up (its heartbeat row says so a moment later).
    if (status.state === "up") this.bus?.publish({ kind: "hello" });
    this.options.onBusStatus?.(status);
    this.applyPollCap();
  }

  private peersChanged(peers: readonly NodeRecord[]): void {
    const ids = new Set(peers.map((p) => p.id));
    const lost = [...this.peerIds].filter((id) => !ids.has(id));
    this.peerIds = ids;
    if (lost.length > 0) {
      this.options.log.info({ lost }, "nodes left or stopped heartbeating: their deliveries fall due within an ack wait");
      this.target?.peerLost();
    }
    if (peers.length > 0 && !this.bus && !this.warnedAlone) {
      this.warnedAlone = true;
      this.options.log.warn(
        { peers: peers.map((p) => p.id), pollMs: this.options.peerPollMs },
        "other tablemq nodes use this database and TABLEMQ_REDIS_URL is not set: messages committed on another node reach this one's subscribers at the next poll (set TABLEMQ_REDIS_URL on every node for wake-ups in milliseconds)",
      );
    }
    this.applyPollCap();
  }

  private applyPollCap(): void {
    this.target?.setShared(this.membership.hasPeers);
    this.target?.setPollCap(this.wakeups() === "poll" ? this.options.peerPollMs : undefined);
  }
}
