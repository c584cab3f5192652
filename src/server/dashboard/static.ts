/**
 * The dashboard's files at /ui/: the page and its modules from the package's `ui/` folder, and the few
 * libraries it imports (Preact, htm, uPlot) from their installed packages under /ui/vendor/<package>/, so
 * it works without internet and without a build step. Open routes: the files hold no data; every figure
 * comes from the API, with the token the page asks for.
 */
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";

/** src/server/dashboard/ and dist/server/dashboard/ are both three folders below the package. */
export const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), "../../../ui");

/** The packages the page imports, by the name its import map gives them. */
const VENDOR = ["preact", "htm", "uplot"] as const;

const require = createRequire(import.meta.url);

/** An installed package's folder (found from its main module: not every package exports package.json). */
function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  while (!dir.endsWith(`node_modules/${name}`) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export async function serveUi(app: FastifyInstance): Promise<void> {
  const vendorDirs = new Map<string, string>(VENDOR.map((name) => [name, packageDir(name)]));
  // serve: false: only reply.sendFile, which keeps each path inside the root it is given.
  await app.register(fastifyStatic, { root: UI_DIR, serve: false });
  app.get("/ui", (_req, reply) => reply.redirect("/ui/"));
  app.get<{ Params: { "*": string } }>("/ui/*", (req, reply) => {
    const path = req.params["*"];
    const vendor = /^vendor\/([a-z]+)\/(.+)$/.exec(path);
    if (vendor) {
      const dir = vendorDirs.get(vendor[1]!);
      if (dir) return reply.sendFile(vendor[2]!, dir, { maxAge: 3_600_000 });
      return reply.callNotFound();
    }
    // The page itself is never cached: a new version of the server brings its own.
    void reply.header("cache-control", "no-cache");
    return reply.sendFile(path === "" ? "index.html" : path, UI_DIR, { cacheControl: false });
  });
}
