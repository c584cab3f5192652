import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { serverNodeFlags, words } from "../../../bench/lib/server-flags.js";

const root = new URL("../../../", import.meta.url);

describe("the server's Node flags", () => {
  it("are the words between node and --import in the start script", () => {
    expect(serverNodeFlags("node --a --b=8 --import tsx src/cli/main.ts serve")).toEqual(["--a", "--b=8"]);
    expect(serverNodeFlags("node src/cli/main.js serve")).toEqual([]);
    expect(() => serverNodeFlags("tsx src/cli/main.ts serve")).toThrow(/does not run node/);
  });

  it("are the same in npm start and in the Docker image's ENTRYPOINT", () => {
    const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { scripts: { start: string } };
    const fromStart = serverNodeFlags(pkg.scripts.start);
    expect(fromStart).toContain("--no-memory-reducer");
    const dockerfile = readFileSync(new URL("docker/Dockerfile", root), "utf8");
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(entrypoint[0]).toBe("node");
    expect(entrypoint.slice(1, -1)).toEqual(fromStart);
    expect(entrypoint.at(-1)).toBe("dist/cli/main.js");
  });
});

describe("flags from an environment variable", () => {
  it("are its space-separated words; unset or blank gives none", () => {
    expect(words(" --cpu-prof  --cpu-prof-dir=/tmp/p ")).toEqual(["--cpu-prof", "--cpu-prof-dir=/tmp/p"]);
    expect(words("")).toEqual([]);
    expect(words(undefined)).toEqual([]);
  });
});
