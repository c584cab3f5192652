import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, SETTINGS } from "../../src/server/config.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

describe("README", () => {
  it("documents every server setting with its default", () => {
    for (const s of SETTINGS) {
      const row = readme.split("\n").find((l) => l.startsWith(`| \`${s.env}\``));
      expect(row, s.env).toBeDefined();
      const value = DEFAULT_CONFIG[s.key];
      // An empty default (a setting that is off unless given) is documented as "(none)".
      expect(row, s.env).toContain(
        value === "" ? "| (none) |" : `\`${typeof value === "object" ? JSON.stringify(value) : String(value)}\``,
      );
    }
  });

  it("documents no setting that does not exist", () => {
    const documented = [...readme.matchAll(/^\| `(TABLEMQ_[A-Z_]+)`/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(SETTINGS.map((s) => s.env).sort());
  });
});
