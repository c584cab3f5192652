/** test/support/run-id.ts: the names of a test run's databases, and which leftovers a later run drops. */
import { describe, expect, it } from "vitest";
import {
  MAX_DATABASE_NAME,
  STALE_AFTER_S,
  isStaleRunDatabase,
  newRunId,
  runDatabaseName,
  runIdStart,
  runOfDatabase,
} from "../support/run-id.js";

const T = Date.UTC(2026, 11, 7, 9, 19, 39) / 1000; // 2026-12-07 09:19:39 UTC

describe("test run ids and database names", () => {
  it("are <yymmddhhmm UTC>_<6 hex>, readable back to the minute", () => {
    const id = newRunId(T, "a1b2c3");
    expect(id).toBe("2612070919_a1b2c3");
    expect(runIdStart(id)).toBe(T - 39);
    expect(newRunId(T)).toMatch(/^2612070919_[0-9a-f]{6}$/);
    expect(newRunId(T)).not.toBe(newRunId(T));
  });

  it("name the run's database and each file's, within the 64-character limit", () => {
    const id = newRunId(T, "a1b2c3");
    expect(runDatabaseName(id)).toBe("tablemq_2612070919_a1b2c3");
    expect(runDatabaseName(id, "engine_it")).toBe("tablemq_2612070919_a1b2c3_engine_it");
    expect(runDatabaseName(id, "x".repeat(38))).toHaveLength(MAX_DATABASE_NAME);
    expect(() => runDatabaseName(id, "x".repeat(39))).toThrow(/too long: at most 38 characters/);
    expect(() => runDatabaseName(id, "Engine")).toThrow(/a-z, 0-9 and _ only/);
    expect(() => runDatabaseName("engine_it", "x")).toThrow(/bad run id/);
  });

  it("tell a run's databases from every other database", () => {
    expect(runOfDatabase("tablemq_2612070919_a1b2c3")).toBe("2612070919_a1b2c3");
    expect(runOfDatabase("tablemq_2612070919_a1b2c3_faults_crash")).toBe("2612070919_a1b2c3");
    for (const other of [
      "tablemq_bench",
      "tablemq_callgrind",
      "tablemq_engine_it",
      "test",
      "tablemq_2612070919_A1B2C3",
      "xtablemq_2612070919_a1b2c3",
    ]) {
      expect(runOfDatabase(other)).toBeUndefined();
    }
  });

  it("count a run's databases as stale only past the limit, and nothing else ever", () => {
    const old = runDatabaseName(newRunId(T - STALE_AFTER_S - 120, "000000"), "engine_it");
    const recent = runDatabaseName(newRunId(T - STALE_AFTER_S + 120, "000000"), "engine_it");
    expect(isStaleRunDatabase(old, T)).toBe(true);
    expect(isStaleRunDatabase(recent, T)).toBe(false);
    expect(isStaleRunDatabase(runDatabaseName(newRunId(T + 3600, "000000")), T)).toBe(false); // a clock ahead
    expect(isStaleRunDatabase("tablemq_bench", T)).toBe(false);
    expect(isStaleRunDatabase("tablemq_faults_crash", T)).toBe(false);
  });
});
