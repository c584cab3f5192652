import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

/** `npm run test:pack`: the packed package installed and run (slow: a build and an install). */
export default defineConfig({
  test: { ...base.test, include: ["test/pack/**/*.test.ts"], exclude: [], testTimeout: 120_000, hookTimeout: 300_000 },
});
