/**
 * Renders the README's pictures of the dashboard: docs/dashboard.png (the overview) and docs/table.png (a
 * table's page). `npm run screenshots`: a server of its own on an embedded SQLite file in a temp folder,
 * on 127.0.0.1, with a few tables given some traffic for ~25 s (bounded in count and time), then Chromium
 * (playwright-core, Debian's /usr/bin/chromium) takes the pictures. Nothing outside this machine is touched.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TablemqClient } from "../src/client/client.js";
import { loadConfig } from "../src/server/config.js";
import { startServer } from "../src/server/server.js";
import { launchChromium } from "../test/support/browser.js";

const TRAFFIC_MS = 25_000;
const OUT = new URL("../docs/", import.meta.url);

const dir = await mkdtemp(join(tmpdir(), "tablemq-screens-"));
const server = await startServer(
  loadConfig({}, { databaseUrl: `sqlite:${join(dir, "demo.db")}`, port: 0, host: "127.0.0.1", logLevel: "warn" }),
);
const client = new TablemqClient({ url: server.url });
const stops: Array<() => Promise<void>> = [];
try {
  await client.createTable("orders", { ackWaitMs: 30_000, maxAttempts: 5 });
  await client.createTable("emails", { ackWaitMs: 60_000 });
  await client.createTable("payments", { ackWaitMs: 10_000, minBackoffMs: 10_000, maxAttempts: 1 });

  // orders: a steady stream, worked by two subscribers; a few messages later, one delayed an hour.
  for (let i = 0; i < 2; i++) {
    const worker = client.work("orders", () => new Promise<void>((r) => setTimeout(r, 5 + Math.random() * 20)), { concurrency: 20 });
    stops.push(() => worker.close());
  }
  await client.publish("orders", [{ payload: { order: 90_001, sku: "B-7", qty: 2 }, delayMs: 3_600_000 }]);
  // emails: a backlog while the table is paused for an incident.
  await client.pauseTable("emails");
  for (let i = 0; i < 12; i++) {
    await client.publish(
      "emails",
      Array.from({ length: 100 }, (_, n) => ({ payload: { to: `user${i * 100 + n}@example.com`, template: "welcome" } })),
    );
  }
  // payments: two that fail for good (dead letters) and some waiting to be retried.
  await client.publish("payments", [{ payload: { charge: "ch_1", amount: 1200 } }, { payload: { charge: "ch_2", amount: 90 } }]);
  const failer = client.work("payments", async (m) => void (await m.fail("card declined")), { concurrency: 2 });
  await new Promise((r) => setTimeout(r, 1_000));
  await failer.close();
  await client.publish("payments", [{ payload: { charge: "ch_3", amount: 5000 }, delayMs: 120_000 }]);

  const started = Date.now();
  const producing = (async () => {
    for (let n = 0; Date.now() - started < TRAFFIC_MS && n < 100_000; n++) {
      const burst = 5 + Math.round(20 * (1 + Math.sin(n / 10)));
      await client.publish(
        "orders",
        Array.from({ length: burst }, (_, i) => ({ payload: { order: n * 100 + i, sku: `A-${i % 9}`, qty: 1 + (i % 3) } })),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const browser = await launchChromium();
  stops.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 560 }, deviceScaleFactor: 1 });
  await page.goto(`${server.url}/ui/`);
  await producing;
  await page.getByRole("link", { name: "orders" }).waitFor();
  await page.screenshot({ path: new URL("dashboard.png", OUT).pathname });

  await page.setViewportSize({ width: 1280, height: 1000 });
  await page.goto(`${server.url}/ui/#/tables/orders`);
  await page.getByRole("heading", { name: "Messages" }).waitFor();
  await page.locator("tr[data-message]").first().locator("button").click();
  await page.getByLabel("Payload").waitFor();
  await new Promise((r) => setTimeout(r, 2_500)); // a live update of the charts
  await page.screenshot({ path: new URL("table.png", OUT).pathname, fullPage: false });
  console.log("wrote docs/dashboard.png and docs/table.png");
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
