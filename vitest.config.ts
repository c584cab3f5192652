import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The packed-package test builds and installs: `npm run test:pack` (vitest.pack.config.ts).
    exclude: ["test/pack/**", "**/node_modules/**"],
    // Picks the integration database (env URL, container, or local server) and provides its URL.
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 20_000,
    // Generous: the global setup may start a MySQL container.
    hookTimeout: 60_000,
    pool: "forks",
  },
});
