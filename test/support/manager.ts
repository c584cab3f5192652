import { Semaphore } from "async-mutex";
import { silentLogger } from "../../src/logger.js";
import { type ManagerDeps, MessageManager } from "../../src/manager/manager.js";
import { resolveOptions, type TableOptions } from "../../src/options.js";
import type { MessageRow } from "../../src/model/messages.js";
import { FakeClock, settle } from "./fake-clock.js";
import { MemoryStore } from "./memory-store.js";
import { Sweeper } from "../../src/engine/sweeper.js";

/** The table the manager unit tests use. */
export const MANAGER_TABLE = "orders";
const managers: MessageManager[] = [];
const sweepers: Sweeper[] = [];

/**
 * An open manager over a MemoryStore with a FakeClock (ack wait and poll 30 s, batches of 2, cache 100
 * unless overridden), looked after by a Sweeper of its own as the engine's sweep looks after its tables (the
 * periodic look for due rows and acks), plus helpers to seed the table (rows written behind the manager's back) and to build
 * rows to enqueue (enqueueRows).
 */
export function managerSetup(
  overrides: Partial<TableOptions> = {},
  permits = 4,
  store = new MemoryStore(),
  deps: Pick<ManagerDeps, "signalDue"> = {},
) {
  const T = MANAGER_TABLE;
  const clock = new FakeClock();
  const options = resolveOptions({ ackWaitMs: 30_000, pollIntervalMs: 30_000, batchSize: 2, cacheSize: 100, ...overrides });
  void store.createTable(T, options);
  const semaphore = new Semaphore(permits);
  const sweeper = new Sweeper({ store, clock, log: silentLogger });
  const replanSweep = () => sweeper.replan(T);
  const m = new MessageManager(T, options, { store, clock, random: () => 0.5, semaphore, log: silentLogger, replanSweep, ...deps });
  managers.push(m);
  m.open();
  sweeper.add(T, m);
  sweeper.start();
  sweepers.push(sweeper);
  const seed = (n: number, extra: Partial<MessageRow> = {}) =>
    store.seed(
      T,
      Array.from({ length: n }, (_, i) => ({ id: String(i + 1), timeNext: clock.now() - 1000 + i, ...extra })),
    );
  const row = (id: string, timeNext = clock.now(), priority = 50): MessageRow => ({ id, priority, timeNext, epoch: 0, payload: "{}" });
  return { clock, store, m, seed, row, semaphore, sweeper };
}

/**
 * Enqueues `rows` (decimal ids, due at their timeNext) through the manager's entry point, then lets the
 * insert path's hand-off settle: it runs after the enqueue has answered (Inserter: `void ticket.done`).
 * Returns how many of the rows the insert path took: queued in the cache, or scheduled on a timer here.
 */
export async function enqueueRows(m: MessageManager, rows: readonly MessageRow[]): Promise<number> {
  const taken = () => {
    const s = m.snapshot();
    return s.stats.queued + s.scheduled;
  };
  const before = taken();
  await m.enqueue(rows.map((r) => ({ id: r.id, priority: r.priority, deliverAt: r.timeNext, payload: r.payload })));
  await settle();
  return taken() - before;
}

/** Closes every manager managerSetup made (use in afterEach). */
export async function closeManagers(): Promise<void> {
  await Promise.all(sweepers.splice(0).map((s) => s.stop()));
  await Promise.all(managers.splice(0).map((m) => m.close()));
}
