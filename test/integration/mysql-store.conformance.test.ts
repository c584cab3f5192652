import { describeWithDatabase, useTestStore } from "../support/database.js";
import { describeStoreConformance } from "../support/store-conformance.js";

describeWithDatabase("MysqlStore conformance", () => {
  const db = useTestStore();
  describeStoreConformance("MysqlStore", () => ({ store: db.store, newTable: (prefix) => db.table(prefix) }));
});
