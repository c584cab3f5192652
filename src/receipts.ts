import type { Delivery, MessageRow } from "./model/messages.js";

/**
 * A receipt names one delivery of a message: its id and the epoch it was delivered with. Clients treat it
 * as opaque; the server uses it to fence acks, postpones and extensions (see MessageStore.updateDeliveries).
 */
export const RECEIPT_PATTERN = "^(0|[1-9][0-9]{0,19}):(0|[1-9][0-9]{0,14})$";
const RECEIPT = new RegExp(RECEIPT_PATTERN);

export function receiptOf(delivery: Delivery): string {
  return `${delivery.id}:${delivery.epoch}`;
}

/** The delivery a receipt names, or undefined when it is not a receipt. */
export function parseReceipt(receipt: string): Delivery | undefined {
  if (!RECEIPT.test(receipt)) return undefined;
  const colon = receipt.indexOf(":");
  return { id: receipt.slice(0, colon), epoch: Number(receipt.slice(colon + 1)) };
}

/**
 * A delivered message as JSON text (wire.ts DeliveredMessage), the same in WebSocket frames and webhook
 * POSTs: the payload is the stored JSON text, spliced in, never parsed and re-serialised.
 */
export function deliveredText(r: MessageRow): string {
  return `{"id":"${r.id}","priority":${r.priority},"epoch":${r.epoch},"receipt":"${receiptOf(r)}","payload":${r.payload}}`;
}
