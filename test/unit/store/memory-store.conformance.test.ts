import { describeStoreConformance } from "../../support/store-conformance.js";
import { MemoryStore } from "../../support/memory-store.js";

// The in-memory store the manager's unit tests run on keeps the same contract as the MySQL store.
describeStoreConformance("MemoryStore", () => ({ store: new MemoryStore(), newTable: (prefix) => prefix }));
