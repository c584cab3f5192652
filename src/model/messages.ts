/**
 * The domain's message types, shared by the manager, the engine, the server and every store.
 */

/**
 * A message as the manager sees it. Times are epoch milliseconds (the store converts from Vitess's
 * nanoseconds). `payload` is the raw JSON text of the `message` column, passed through unparsed.
 */
export interface MessageRow {
  /** Decimal string: BIGINT UNSIGNED does not fit a JS number. */
  id: string;
  priority: number;
  /** When (re)delivery is due, epoch ms. */
  timeNext: number;
  /** Deliveries so far. */
  epoch: number;
  payload: string;
  /**
   * Set on a row written already leased by the insert path (see InsertPath.leaseForInsert): the
   * time_next its row holds, i.e. its delivery is recorded up to then and needs no post-send postpone.
   */
  leasedUntil?: number;
  /**
   * Set on a row written held by the insert path (see InsertPath.holdForInsert): the time_next its row
   * holds, epoch 0, so other nodes' polls pass it by while it waits in this node's cache.
   */
  heldUntil?: number;
}

/** A row to insert. `timeNext` is when it is due (epoch ms); `epoch` defaults to 0. */
export interface NewMessage {
  id: string;
  priority: number;
  timeNext: number;
  payload: string;
  epoch?: number;
}

/** One delivery of a message: its id and the epoch it was delivered with (MessageRow.epoch). */
export interface Delivery {
  id: string;
  epoch: number;
}

/** A delivery a claim may record (MessageStore.claim): one read due, or one held by this node (`heldUntil`). */
export interface ClaimRow extends Delivery {
  /** The time_next the insert path wrote for the row (MessageRow.heldUntil): it is claimable while it holds that. */
  heldUntil?: number;
}
