/**
 * The contract every system in the benchmark implements (tablemq and its peers). One adapter module per
 * system under bench/systems/, default-exporting an AdapterFactory. Producers and consumers run in worker
 * processes (bench/worker.ts) separate from the runner and from the server, and each builds its own
 * adapter instance from the same options.
 */
import type { ServerProcesses } from "./cpu.js";
import type { BenchPayload } from "./payload.js";

export interface AdapterOptions {
  /** Queue/table/stream name for this run; adapters create it fresh in prepare(). */
  queue: string;
  /** Most unacked messages a consumer holds (prefetch / maxInFlight / concurrency). */
  prefetch: number;
  /** Consumer processes the workload will run (a system with one shared consumer caps unacked in total). */
  consumers?: number;
  /** Variant of the system, e.g. "classic" or "quorum" for RabbitMQ. */
  variant?: string;
  /** Set by prepare() in the runner when the system is a server the run started (e.g. tablemq's URL). */
  endpoint?: string;
}

export interface Producer {
  /**
   * Publishes the payloads as one batch (one HTTP request, one confirm window, one bulk insert) and
   * resolves only once the system has durably accepted every one of them.
   */
  publish(payloads: BenchPayload[]): Promise<void>;
  close(): Promise<void>;
}

export interface Consumer {
  close(): Promise<void>;
}

export interface Adapter {
  /** Display name, e.g. "rabbitmq-quorum". */
  readonly name: string;
  /** The durability setting the number was measured with, written next to it. */
  readonly durability: string;
  /** Client library and server versions. */
  version(): Promise<string>;
  /** Runner process: makes the queue exist and be empty. */
  prepare(): Promise<void>;
  /** Runner process: removes what prepare() made. */
  cleanup(): Promise<void>;
  /** Runner process: after the system's last workload, stops a server the run started (kept across workloads). */
  shutdown?(): Promise<void>;
  /** Worker process. */
  producer(): Promise<Producer>;
  /**
   * Worker process: starts consuming; `onMessage` gets each payload; the adapter acks it after onMessage
   * returns (batched acks are fine). At most `prefetch` unacked at a time.
   */
  consumer(onMessage: (payload: string | BenchPayload) => void): Promise<Consumer>;
  /** Runner process: the system's server processes by group name, whose CPU time the runner reads around a workload. */
  serverProcesses?(): Record<string, ServerProcesses>;
  /** Runner process: peak resident memory (bytes) of a server the run started, if any. */
  serverPeakRss?(): Promise<number | undefined>;
  /**
   * Runner process: called before a workload; what the function it returns gives after the workload is added
   * to the workload's figures (e.g. how long the server's event loop was held meanwhile).
   */
  aroundWorkload?(): Promise<() => Promise<object>>;
}

export type AdapterFactory = (opts: AdapterOptions) => Adapter;

/** Thrown by an adapter whose system cannot run here; the runner prints the reason and goes on. */
export class Unavailable extends Error {}
