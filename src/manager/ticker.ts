import type { Clock, TimerHandle } from "../clock.js";

/**
 * Runs an async task every `intervalMs` (measured from the end of the previous run), or at once on
 * `trigger()`. Runs never overlap: a trigger during a run schedules exactly one more run right after it.
 * Like Vitess's timer.Timer, a trigger resets the period. With an interval of Infinity it runs only when
 * asked (`trigger`, `runBy`), and holds no timer in between.
 */
export class Ticker {
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private nextRunAt = Infinity;
  /** A runBy() that arrived during a run: honoured when the run ends. */
  private wakeAfterRun = Infinity;

  constructor(
    private readonly clock: Clock,
    private intervalMs: number,
    private readonly task: () => Promise<void>,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** When the next periodic run is due (Infinity while stopped or running). */
  get nextAt(): number {
    return this.nextRunAt;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Stops the period and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.again = false;
    this.wakeAfterRun = Infinity;
    this.cancelTimer();
    await this.running;
  }

  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.run();
  }

  /** Makes sure a run starts no later than `at` (epoch ms): moves the next periodic run earlier if needed. */
  runBy(at: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.wakeAfterRun = Math.min(this.wakeAfterRun, at);
      return;
    }
    if (at >= this.nextRunAt) return;
    this.wakeAfterRun = at;
    this.schedule();
  }

  /** Drops the next run that `runBy` planned (a run in progress, and later triggers, still happen). */
  cancelPlanned(): void {
    this.wakeAfterRun = Infinity;
    if (!this.stopped && !this.running) this.schedule();
  }

  setInterval(ms: number): void {
    if (ms === this.intervalMs) return;
    this.intervalMs = ms;
    if (!this.stopped && !this.running) this.schedule();
  }

  private schedule(): void {
    const at = Math.min(this.clock.now() + this.intervalMs, this.wakeAfterRun);
    this.wakeAfterRun = Infinity;
    this.cancelTimer();
    if (at === Infinity) return;
    this.nextRunAt = at;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.run();
    }, at - this.clock.now());
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.nextRunAt = Infinity;
  }

  private run(): void {
    this.cancelTimer();
    this.running = (async () => {
      try {
        await this.task();
      } catch (err) {
        this.onError(err);
      }
    })().finally(() => {
      this.running = undefined;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        this.run();
      } else {
        this.schedule();
      }
    });
  }
}
