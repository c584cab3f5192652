/**
 * GET /v1/tables a page at a time (issue 29), on each store: pages by name with a cursor that stays good
 * while tables are created and dropped, counts read in one statement per page (a listing of many tables
 * used to fail with 429), `stats=false` without counts, bad parameters refused, and the client following
 * the pages.
 */
import { expect, it } from "vitest";
import { TablemqClient } from "../../src/client/client.js";
import { describeEachStore } from "../support/database.js";
import { http, useTestServer } from "../support/server.js";

/** Tables this file makes: enough for two pages of the default size. */
const MANY = 130;

describeEachStore("listing tables", (kind) => {
  const t = useTestServer("listing", {}, kind);
  const names = (body: { tables: Array<{ name: string }> }) => body.tables.map((d) => d.name);
  const list = async (query: string) => {
    const res = await http(t.base, "GET", `/v1/tables${query}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as { tables: Array<{ name: string; stats?: Record<string, number> }>; next?: string };
  };

  it("pages by name; the cursor holds while tables are created and dropped", async () => {
    for (const n of ["l_b", "l_d", "l_f", "l_h"]) expect((await http(t.base, "PUT", `/v1/tables/${n}`)).status).toBe(201);
    const first = await list("?limit=2");
    expect(names(first)).toEqual(["l_b", "l_d"]);
    expect(first.next).toBe("l_d");
    // Meanwhile: one made before the cursor (not seen: the listing has passed it), one after it (seen), one
    // not yet listed dropped (not seen), and no table twice.
    for (const n of ["l_a", "l_e"]) expect((await http(t.base, "PUT", `/v1/tables/${n}`)).status).toBe(201);
    expect((await http(t.base, "DELETE", "/v1/tables/l_f")).status).toBe(200);
    const second = await list(`?limit=2&cursor=${first.next}`);
    expect(names(second)).toEqual(["l_e", "l_h"]);
    expect(second.next).toBeUndefined();
    expect(second.tables[0]!.stats).toMatchObject({ ready: 0, dead: 0, receivers: 0 });
  });

  it(`lists ${MANY} tables with their counts, and without counts when asked`, async () => {
    const client = new TablemqClient({ url: t.base });
    const made: string[] = [];
    for (let i = 0; i < MANY; i++) made.push(`m_${String(i).padStart(3, "0")}`);
    for (let i = 0; i < made.length; i += 10) await Promise.all(made.slice(i, i + 10).map((n) => client.createTable(n)));
    await client.publish("m_007", [{ payload: 1 }, { payload: 2, delayMs: 60_000 }]);
    const page = await list("?cursor=l_z"); // the default page: 100
    expect(page.tables).toHaveLength(100);
    expect(page.next).toBe("m_099");
    expect(page.tables.find((d) => d.name === "m_007")!.stats).toMatchObject({ ready: 1, delayed: 1, inFlight: 0, acked: 0, dead: 0 });
    const rest = await list(`?cursor=${page.next}&limit=1000`);
    expect(names(rest)).toEqual(made.slice(100));
    const bare = await list("?stats=false&cursor=l_z&limit=3");
    expect(bare.tables.map((d) => Object.keys(d).sort())).toEqual([
      ["name", "options", "webhooks"],
      ["name", "options", "webhooks"],
      ["name", "options", "webhooks"],
    ]);
    // The client follows every page.
    const all = await client.listTables();
    expect(all.map((d) => d.name).filter((n) => n.startsWith("m_"))).toEqual(made);
    expect(all.every((d) => typeof d.stats.ready === "number")).toBe(true);
  });

  it("refuses a bad limit, cursor or stats naming the parameter", async () => {
    for (const [query, field] of [
      ["?limit=0", "limit"],
      ["?limit=1001", "limit"],
      ["?limit=x", "limit"],
      ["?cursor=Bad-Name", "cursor"],
      ["?stats=maybe", "stats"],
      ["?other=1", "other"],
    ]) {
      const res = await http(t.base, "GET", `/v1/tables${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.message, query).toMatch(new RegExp(field!));
    }
  });
});
