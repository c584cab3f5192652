/** Printing a listing a page at a time: `--limit`, `--cursor` and `--all`, as dlq list, peek and table list take them. */
import type { Column, Printer } from "./output.js";

export interface PageFlags {
  cursor?: string;
  all?: boolean;
}

/**
 * Prints the pages `read` gives from `flags.cursor` on: every page with `--all`, else the first, and then
 * a note with the cursor of the next (on stderr) when there is more.
 */
export async function printPages<T>(
  out: Printer,
  columns: ReadonlyArray<Column<T>>,
  flags: PageFlags,
  read: (cursor: string | undefined) => Promise<{ items: readonly T[]; next?: string | undefined }>,
): Promise<void> {
  const printed = out.stream(columns);
  let cursor = flags.cursor;
  try {
    for (;;) {
      const page = await read(cursor);
      for (const item of page.items) printed.add(item);
      if (page.next === undefined) return;
      if (!flags.all) return out.note(`more: --cursor ${page.next}`);
      cursor = page.next;
    }
  } finally {
    printed.end();
  }
}
