import type { Clock, TimerHandle } from "../clock.js";

/** The ping period is cut into ticks of about this long; each tick pings one slot's sockets. */
export const PING_TICK_MS = 1_000;

/** What PingRing needs of a socket (ws's WebSocket). */
export interface PingedSocket {
  readonly readyState: number;
  ping(): void;
  terminate(): void;
  on(event: "pong", listener: () => void): unknown;
  once(event: "close", listener: () => void): unknown;
}

const OPEN = 1; // WebSocket.OPEN

/**
 * Pings each WebSocket once per interval, spread over the interval: sockets are dealt into slots, one slot
 * per tick (PING_TICK_MS), each new socket into the slot with the fewest. 10,000 subscribers with a 30 s
 * period get ~333 pings a second instead of 10,000 in one burst every 30 s (issue 29). A socket that has
 * not answered its previous ping, a whole interval later, is terminated.
 */
export class PingRing {
  private readonly slots: Array<Set<PingedSocket>>;
  private readonly pinged = new WeakSet<PingedSocket>();
  private readonly answered = new WeakSet<PingedSocket>();
  private readonly tickMs: number;
  private at = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    intervalMs: number,
  ) {
    const n = Math.max(1, Math.round(intervalMs / PING_TICK_MS));
    this.slots = Array.from({ length: n }, () => new Set<PingedSocket>());
    this.tickMs = intervalMs / n;
    this.schedule();
  }

  /** Sockets followed now. */
  get size(): number {
    return this.slots.reduce((n, s) => n + s.size, 0);
  }

  add(socket: PingedSocket): void {
    let slot = this.slots[0]!;
    for (const s of this.slots) if (s.size < slot.size) slot = s;
    slot.add(socket);
    socket.on("pong", () => this.answered.add(socket));
    socket.once("close", () => slot.delete(socket));
  }

  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = this.clock.setTimeout(() => {
      this.tick();
      this.schedule();
    }, this.tickMs);
  }

  private tick(): void {
    const slot = this.slots[this.at]!;
    this.at = (this.at + 1) % this.slots.length;
    for (const socket of slot) {
      if (this.pinged.has(socket) && !this.answered.has(socket)) {
        slot.delete(socket);
        socket.terminate();
        continue;
      }
      this.answered.delete(socket);
      if (socket.readyState !== OPEN) continue;
      this.pinged.add(socket);
      socket.ping();
    }
  }
}
