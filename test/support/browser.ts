import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll } from "vitest";

/** Debian's Chromium, which `.ci/run` installs when it is missing (TABLEMQ_CHROMIUM points elsewhere). */
export const CHROMIUM = process.env.TABLEMQ_CHROMIUM ?? "/usr/bin/chromium";

/**
 * Whether the browser tests run: when Chromium is there, and always in CI (where its absence is a failure,
 * not a skip). Elsewhere they are skipped with a note.
 */
export const hasBrowser = existsSync(CHROMIUM) || process.env.CI !== undefined;
if (!hasBrowser) process.emitWarning(`tablemq tests: no Chromium at ${CHROMIUM}: the browser tests are skipped (apt-get install chromium)`);

/** Chromium as the issue has it run: headless, no sandbox (root), nothing fetched from outside. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** For a describe block: one browser, launched before and closed after it. */
export function useBrowser(): { readonly browser: Browser } {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  return {
    get browser() {
      if (!browser) throw new Error("the browser is launched before the tests");
      return browser;
    },
  };
}
