/**
 * How many of a poll's rows, in order, a byte bound takes (MessageStore.readDue): rows while their payload
 * bytes fit `maxBytes` in total, and always the first, so a payload larger than the bound still moves.
 */
export function rowsWithin(bytes: readonly number[], maxBytes: number): number {
  let total = 0;
  for (let i = 0; i < bytes.length; i++) {
    total += bytes[i]!;
    if (total > maxBytes && i > 0) return i;
  }
  return bytes.length;
}
