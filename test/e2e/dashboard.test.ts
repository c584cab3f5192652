/**
 * The dashboard in a real browser (Chromium through playwright-core) against the real server and MariaDB:
 * the overview and its live counts, browsing a message, redriving a dead letter, pause and resume seen by a
 * WebSocket subscriber, purge with its confirmation, and the token flow with a read-only token.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { describeWithDatabase, uniqueTableName } from "../support/database.js";
import { hasBrowser, useBrowser } from "../support/browser.js";
import { useTestServer } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";

const OPERATOR = "dash-operator-token";
const READER = "dash-read-token";
const FAST = { ackWaitMs: 1_000, minBackoffMs: 1_000, pollIntervalMs: 100 };
/** How long a page may take to show what the live feed brings (it describes the tables every 2 s). */
const SEEN_MS = 8_000;

// Skipped (with a warning) only outside CI on a machine without Chromium: see test/support/browser.ts.
const describeWithBrowser = (name: string, fn: () => void) => describe.skipIf(!hasBrowser)(name, () => describeWithDatabase("", fn));

describeWithBrowser("dashboard in a browser", () => {
  const t = useTestServer("dashboard", {
    authTokens: {
      [OPERATOR]: { "*": ["publish", "consume", "admin", "read"] },
      [READER]: { "*": ["read"] },
    },
  });
  const b = useBrowser();

  const api = async (method: string, path: string, body?: unknown, token = OPERATOR) => {
    const res = await fetch(t.base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const newTable = async (options: object = FAST) => {
    const table = uniqueTableName("dash");
    expect((await api("PUT", `/v1/tables/${table}`, options)).status).toBe(201);
    return table;
  };
  const enqueue = async (table: string, messages: object[]) => {
    const res = await api("POST", `/v1/tables/${table}/messages`, { messages });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.ids as string[];
  };

  /** A page signed in with `token` through the dashboard's own form. */
  async function signedIn(token: string, hash = ""): Promise<Page> {
    const page = await b.browser.newPage();
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(err.message));
    (page as Page & { problems?: string[] }).problems = problems;
    await page.goto(`${t.base}/ui/${hash}`);
    await page.getByLabel("Access token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("live", { exact: true }).waitFor({ timeout: SEEN_MS });
    return page;
  }
  const countCell = (page: Page, table: string, key: string) => page.locator(`tr[data-table="${table}"] [data-count="${key}"]`);
  const pageCount = (page: Page, key: string) => page.locator(`.counts [data-count="${key}"]`);
  const noErrors = (page: Page) => expect((page as Page & { problems?: string[] }).problems).toEqual([]);

  it("asks for a token, refuses a wrong one, and shows the overview, whose counts follow an enqueue", async () => {
    const table = await newTable();
    const page = await b.browser.newPage();
    await page.goto(`${t.base}/ui/`);
    await page.getByLabel("Access token").fill("not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "not valid" }).waitFor();
    await page.getByLabel("Access token").fill(OPERATOR);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Tables" }).waitFor();
    await page.getByRole("link", { name: table }).waitFor({ timeout: SEEN_MS });
    expect(await countCell(page, table, "ready").textContent()).toBe("0");
    await enqueue(table, [{ payload: { n: 1 } }, { payload: { n: 2 } }, { payload: { n: 3 }, delayMs: 600_000 }]);
    await countCell(page, table, "ready").filter({ hasText: /^2$/ }).waitFor({ timeout: SEEN_MS });
    expect(await countCell(page, table, "delayed").textContent()).toBe("1");
    // The token is kept for the tab: a reload does not ask again.
    await page.reload();
    await page.getByRole("link", { name: table }).waitFor({ timeout: SEEN_MS });
    await page.close();
  });

  it("creates a table from the overview and opens its page", async () => {
    const table = uniqueTableName("made");
    const page = await signedIn(OPERATOR);
    await page.getByLabel("Name").fill(table);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: table }).waitFor();
    expect((await api("GET", `/v1/tables/${table}`)).status).toBe(200);
    await page.getByLabel("Ack wait (ms)").fill("5000");
    await page.getByRole("button", { name: "Save options" }).click();
    await page.getByRole("status").filter({ hasText: "Options saved: ackWaitMs" }).waitFor();
    expect((await api("GET", `/v1/tables/${table}`)).body.options.ackWaitMs).toBe(5_000);
    noErrors(page);
    await page.close();
  });

  it("opens a table and shows a message's payload from the browser", async () => {
    const table = await newTable();
    const [id] = await enqueue(table, [{ payload: { order: 42, sku: "A-42" }, priority: 7 }]);
    const page = await signedIn(OPERATOR);
    await page.getByRole("link", { name: table }).click({ timeout: SEEN_MS });
    await page.getByRole("heading", { name: "Messages" }).waitFor();
    await page.getByRole("button", { name: `Open message ${id}` }).click();
    const payload = page.getByLabel("Payload");
    await payload.waitFor();
    expect(JSON.parse((await payload.textContent())!)).toEqual({ order: 42, sku: "A-42" });
    await expect.poll(() => page.locator(".viewer").textContent()).toContain("7");
    // Browsing changed nothing: it is still ready, never delivered.
    expect((await api("GET", `/v1/tables/${table}/messages/${id}`)).body).toMatchObject({ state: "ready", epoch: 0 });
    noErrors(page);
    await page.close();
  });

  it("redrives a dead letter", async () => {
    const table = await newTable({ ...FAST, maxAttempts: 1 });
    const [id] = await enqueue(table, [{ payload: "poison" }]);
    const sub = await t.subscribe(table, "", false, OPERATOR);
    await sub.waitForMessages(1);
    sub.send({ type: "fail", ids: [id], reason: "cannot parse" });
    await waitUntil(async () => (await api("GET", `/v1/tables/${table}`)).body.stats.dead === 1, "the dead letter");
    sub.close();
    // Gone on the server too, so the redriven message is not sent to it on its way out.
    await waitUntil(async () => (await api("GET", `/v1/tables/${table}`)).body.stats.receivers === 0, "the subscriber gone");
    const page = await signedIn(OPERATOR, `#/tables/${table}`);
    const row = page.locator(`tr[data-dead="${id}"]`);
    await row.waitFor({ timeout: SEEN_MS });
    expect(await row.textContent()).toContain("cannot parse");
    await row.getByRole("button", { name: `Redrive ${id}` }).click();
    await page.getByRole("status").filter({ hasText: "1 redriven" }).waitFor();
    await page.getByText("No dead letters.").waitFor();
    const back = await api("GET", `/v1/tables/${table}/messages/${id}`);
    expect(back.body).toMatchObject({ id, epoch: 0 });
    noErrors(page);
    await page.close();
  });

  it("pauses delivery (a subscriber gets nothing) and resumes it (the subscriber gets them)", async () => {
    const table = await newTable();
    const sub = await t.subscribe(table, "", true, OPERATOR);
    const page = await signedIn(OPERATOR, `#/tables/${table}`);
    await page.getByRole("button", { name: "Pause" }).click();
    await page.locator('[data-state="paused"]').waitFor();
    expect((await api("GET", `/v1/tables/${table}`)).body.options.paused).toBe(true);
    const ids = await enqueue(table, [{ payload: "a" }, { payload: "b" }]);
    await sleep(1_000);
    expect(sub.messages).toEqual([]);
    await pageCount(page, "ready").filter({ hasText: /^2$/ }).waitFor({ timeout: SEEN_MS });
    await page.getByRole("button", { name: "Resume" }).click();
    await page.locator('[data-state="on"]').waitFor();
    await sub.waitForMessages(2);
    expect(sub.ids.sort()).toEqual([...ids].sort());
    noErrors(page);
    await page.close();
  });

  it("purges after a confirmation that names the count, and not when it is cancelled", async () => {
    const table = await newTable();
    await enqueue(
      table,
      Array.from({ length: 7 }, (_, n) => ({ payload: n })),
    );
    const page = await signedIn(OPERATOR, `#/tables/${table}`);
    await pageCount(page, "ready").filter({ hasText: /^7$/ }).waitFor({ timeout: SEEN_MS });
    // By keyboard: Enter on the focused button opens the confirmation, Escape cancels it.
    await page.getByRole("button", { name: "Purge" }).focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    expect(await dialog.locator("[data-purge-count]").textContent()).toBe("7");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    expect((await api("GET", `/v1/tables/${table}`)).body.stats.ready).toBe(7);
    await page.getByRole("button", { name: "Purge" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete 7 messages" }).click();
    await page.getByRole("status").filter({ hasText: "Purged 7 messages" }).waitFor();
    expect((await api("GET", `/v1/tables/${table}`)).body.stats).toMatchObject({ ready: 0, delayed: 0, inFlight: 0 });
    await pageCount(page, "ready").filter({ hasText: /^0$/ }).waitFor({ timeout: SEEN_MS });
    noErrors(page);
    await page.close();
  });

  it("with a read-only token shows the table and its messages but no action", async () => {
    const table = await newTable({ ...FAST, maxAttempts: 1 });
    const [id] = await enqueue(table, [{ payload: { seen: true } }]);
    const page = await signedIn(READER, `#/tables/${table}`);
    await page.getByRole("button", { name: `Open message ${id}` }).click({ timeout: SEEN_MS });
    await page.getByLabel("Payload").waitFor();
    for (const name of ["Pause", "Resume", "Purge", "Deliver now", "Delete", "Save options", "Redrive all"]) {
      expect(await page.getByRole("button", { name, exact: true }).count(), name).toBe(0);
    }
    expect(await page.getByRole("heading", { name: "Options" }).count()).toBe(0);
    noErrors(page);
    await page.close();
  });

  it("fits a narrow screen: no sideways scrolling on the overview", async () => {
    await newTable();
    const page = await signedIn(OPERATOR);
    await page.setViewportSize({ width: 380, height: 800 });
    await page.locator("tr[data-table]").first().waitFor({ timeout: SEEN_MS });
    // A string: it runs in the page, whose DOM types this project's (Node) typecheck does not have.
    const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth");
    expect(overflow).toBeLessThanOrEqual(0);
    await page.close();
  });
});
