/**
 * Issue 31: the client must be light. Everything `tablemq/client` loads at run time, followed from
 * src/client/index.ts through its value imports (type-only imports are erased), is client code or the
 * dependency-free modules beside it, and its packages are `ws` and Node's built-ins: no fastify, mysql2,
 * kysely, pino or prom-client.
 */
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../../../src/", import.meta.url));
/** Value imports and re-exports: `import x from`, `import { a } from`, `export { a } from`, `import "x"`. */
const SPECIFIERS = /^\s*(?:import|export)\s+(?!type\b)(?:[^;]*?\sfrom\s+)?["']([^"']+)["']/gm;

function runtimeGraph(entry: string): { files: string[]; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = readFileSync(file, "utf8");
    for (const [, spec] of text.matchAll(SPECIFIERS)) {
      if (spec!.startsWith(".")) visit(resolve(dirname(file), spec!.replace(/\.js$/, ".ts")));
      else packages.add(spec!.startsWith("node:") ? "node:" : spec!.split("/")[0]!);
    }
  };
  visit(entry);
  return { files: [...files].map((f) => relative(SRC, f)).sort(), packages };
}

describe("the client's run-time imports", () => {
  it("are client code and dependency-free shared modules; its packages are ws and Node's", () => {
    const { files, packages } = runtimeGraph(resolve(SRC, "client/index.ts"));
    expect(files.filter((f) => !f.startsWith("client/"))).toEqual(["clock.ts", "ids.ts", "model/limits.ts"]);
    expect([...packages].sort()).toEqual(["node:", "ws"]);
  });
});
