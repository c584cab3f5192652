// Removes, from package-lock.json, optional dependencies that the lock has no entry for. The registry
// mirror this project's machines use does not serve some platform packages (msgpackr-extract's darwin and
// win32 builds, via bullmq); `npm install` then writes a lock that lists them as wanted but not resolved,
// and `npm ci` refuses it. Run `node .ci/prune-lock.mjs` after `npm install` changes the lock.
import { readFileSync, writeFileSync } from "node:fs";

const path = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8"));
const pruned = [];
for (const [name, entry] of Object.entries(lock.packages)) {
  for (const dep of Object.keys(entry.optionalDependencies ?? {})) {
    const nested = `${name ? `${name}/` : ""}node_modules/${dep}`;
    if (!lock.packages[nested] && !lock.packages[`node_modules/${dep}`]) {
      delete entry.optionalDependencies[dep];
      pruned.push(`${name || "(root)"} -> ${dep}`);
    }
  }
}
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(pruned.length ? `pruned:\n  ${pruned.join("\n  ")}` : "nothing to prune");
