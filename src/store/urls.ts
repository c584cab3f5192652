/**
 * The database URLs tablemq takes (TABLEMQ_DATABASE_URL): `mysql://user:pass@host:port/db` (MySQL 8 /
 * MariaDB, the production store) or `sqlite:<path>` (the embedded store, one node; a relative path is
 * from the working directory).
 */
import { resolve } from "node:path";

export const DATABASE_URL = /^(mysql:\/\/|sqlite:.)/;

const SQLITE_URL = /^sqlite:(.+)$/;

/** The file a `sqlite:<path>` URL names, resolved; undefined for any other URL. */
export function sqlitePath(url: string): string | undefined {
  const m = SQLITE_URL.exec(url);
  return m ? resolve(m[1]!) : undefined;
}
