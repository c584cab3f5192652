/**
 * The package's version, from package.json (one level up from src/ and from dist/ alike), for whoever
 * reports it: the CLI's --version and the OpenAPI document's `info.version`.
 */
import { createRequire } from "node:module";

export const VERSION = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
