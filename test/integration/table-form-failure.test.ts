import { expect, it, vi } from "vitest";
import { resolveOptions } from "../../src/options.js";
import * as tableForm from "../../src/store/mysql/table-form.js";
import { PLAIN_FORM } from "../../src/store/mysql/table-form.js";
import { describeWithDatabase, useTestStore } from "../support/database.js";

vi.mock("../../src/store/mysql/table-form.js", async (original) => {
  const real = await original<typeof import("../../src/store/mysql/table-form.js")>();
  return { ...real, readTableForms: vi.fn(real.readTableForms) };
});

describeWithDatabase("MysqlStore table forms", () => {
  const db = useTestStore();

  it("serves a table whose form cannot be read in the plain form, and takes the form at the next discovery", async () => {
    const table = db.table("formfail");
    const read = vi.mocked(tableForm.readTableForms);
    read.mockRejectedValueOnce(new Error("information_schema unreadable"));
    expect(await db.store.createTable(table, resolveOptions())).toBe(true); // created, and says so
    expect(db.store.formOf(table)).toEqual(PLAIN_FORM);
    await db.store.insertMessages(table, [{ id: "1", priority: 50, timeNext: 0, payload: '{"s":"é"}' }]);

    read.mockRejectedValueOnce(new Error("information_schema unreadable"));
    expect((await db.store.discoverTables()).map((t) => t.name)).toContain(table);
    expect(db.store.formOf(table)).toEqual(PLAIN_FORM);

    await db.store.discoverTables();
    const mariadb = db.flavor === "mariadb";
    expect(db.store.formOf(table)).toEqual({ hexPayload: mariadb, uncheckedUpdates: mariadb, maxId: 2n ** 64n - 1n });
    await db.store.insertMessages(table, [{ id: "2", priority: 50, timeNext: 0, payload: '{"s":"ü"}' }]);
    expect((await db.store.readDue(table, 1, 10)).map((r) => r.payload)).toEqual(['{"s":"é"}', '{"s":"ü"}']);
    expect(await db.store.ack(table, ["1", "2"], 1)).toBe(2);
  });
});
