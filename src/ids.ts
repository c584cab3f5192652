import type { Clock } from "./clock.js";
import type { Random } from "./model/backoff.js";

/** 2024-01-01T00:00:00Z: 41 bits of milliseconds from here last until the 2090s. */
const ID_EPOCH_MS = 1_704_067_200_000n;
const NODE_BITS = 10n;
/**
 * The id nodes servers use (0..SERVER_ID_NODES-1: cluster slots, or one drawn at random without membership).
 * The others are for ids made outside a server (`tablemq/sql`, in the application's transaction), so a
 * server's id never collides with one of those; two applications' ids may, and `tablemq/sql` makes a new id
 * for a generated one its INSERT finds taken.
 */
export const SERVER_ID_NODES = 512;
/** The node bits of ids made outside a server: SERVER_ID_NODES..APP_ID_NODES_END-1. */
export const APP_ID_NODES_END = 1024;

/** An id node for ids made outside a server (the client's, `tablemq/sql`'s), drawn at random from theirs. */
export function drawAppIdNode(random: Random = Math.random): number {
  return SERVER_ID_NODES + Math.floor(random() * (APP_ID_NODES_END - SERVER_ID_NODES));
}
const SEQ_BITS = 12n;
const MAX_SEQ = (1n << SEQ_BITS) - 1n;

/** A message id's text: decimal digits without leading zeros (the range is checked by isMessageId). */
export const MESSAGE_ID_PATTERN = "^(0|[1-9][0-9]{0,19})$";
const DECIMAL_ID = new RegExp(MESSAGE_ID_PATTERN);
export const MAX_MESSAGE_ID = 2n ** 64n - 1n;

/** A message id for the default BIGINT UNSIGNED column: decimal digits without leading zeros, at most 2^64 - 1. */
export function isMessageId(id: unknown): id is string {
  // Only a 20-digit id can be past 2^64-1: the BigInt is made for those alone (this runs for every id).
  return typeof id === "string" && DECIMAL_ID.test(id) && (id.length < 20 || BigInt(id) <= MAX_MESSAGE_ID);
}

/**
 * Unique, time-ordered 64-bit message ids (snowflake layout: 41 bits ms | 10 bits node | 12 bits sequence),
 * as decimal strings. The node bits are the server's slot among the live nodes on its database (cluster
 * membership: unique while they heartbeat), or drawn at random when there is none (a store without
 * membership, as in unit tests); a collision would surface as a reported duplicate, never an overwrite. If more than
 * 4096 ids are asked for within one millisecond, or the clock goes back, the generator runs ahead of the
 * clock instead of repeating itself.
 */
export class IdGenerator {
  private node: bigint;
  private lastMs = 0n;
  private seq = 0n;

  constructor(
    private readonly clock: Clock,
    random: Random = Math.random,
    /** 0..1023; random among the servers' (0..SERVER_ID_NODES-1) when absent. */
    node?: number,
  ) {
    this.node = checkedNode(node ?? Math.floor(random() * SERVER_ID_NODES));
  }

  /** Another node number from now on (this node joined again and got another slot). */
  setNode(node: number): void {
    this.node = checkedNode(node);
  }

  next(): string {
    let ms = BigInt(Math.floor(this.clock.now())) - ID_EPOCH_MS;
    if (ms <= this.lastMs) {
      ms = this.lastMs;
      this.seq++;
      if (this.seq > MAX_SEQ) {
        ms++;
        this.seq = 0n;
      }
    } else {
      this.seq = 0n;
    }
    this.lastMs = ms;
    return ((ms << (NODE_BITS + SEQ_BITS)) | (this.node << SEQ_BITS) | this.seq).toString();
  }
}

function checkedNode(node: number): bigint {
  if (!(Number.isInteger(node) && node >= 0 && node < APP_ID_NODES_END)) throw new Error(`invalid id node ${node}`);
  return BigInt(node);
}
