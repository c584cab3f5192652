/** Issue 28: which store the configuration names, and what it refuses. */
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_CONFIG, loadConfig } from "../../../src/server/config.js";
import { sqlitePath } from "../../../src/store/urls.js";

describe("the database settings", () => {
  it("default to the embedded store in ./data, on a worker thread", () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBe("sqlite:./data/tablemq.db");
    expect(DEFAULT_CONFIG.sqliteThread).toBe("worker");
    expect(sqlitePath(config.databaseUrl)).toBe(`${process.cwd()}/data/tablemq.db`);
  });

  it("take mysql:// and sqlite:<path>, and refuse anything else naming the variable", () => {
    expect(loadConfig({ TABLEMQ_DATABASE_URL: "mysql://u:p@db:3306/q" }).databaseUrl).toBe("mysql://u:p@db:3306/q");
    expect(loadConfig({ TABLEMQ_DATABASE_URL: "sqlite:/var/lib/tablemq/q.db" }).databaseUrl).toBe("sqlite:/var/lib/tablemq/q.db");
    for (const url of ["postgres://u@db/q", "sqlite:", "./data/tablemq.db"]) {
      expect(() => loadConfig({ TABLEMQ_DATABASE_URL: url })).toThrow(ConfigError);
      expect(() => loadConfig({ TABLEMQ_DATABASE_URL: url })).toThrow(/TABLEMQ_DATABASE_URL must start with mysql:\/\/ or sqlite:/);
    }
  });

  it("refuse Redis with the embedded store: several nodes need MySQL", () => {
    expect(() => loadConfig({ TABLEMQ_REDIS_URL: "redis://127.0.0.1:6379" })).toThrow(
      /TABLEMQ_REDIS_URL .* embedded SQLite store serves one node/,
    );
    expect(loadConfig({ TABLEMQ_REDIS_URL: "redis://r:6379", TABLEMQ_DATABASE_URL: "mysql://u@db/q" }).redisUrl).toBe("redis://r:6379");
  });

  it("take TABLEMQ_SQLITE_THREAD worker or main, nothing else", () => {
    expect(loadConfig({ TABLEMQ_SQLITE_THREAD: "main" }).sqliteThread).toBe("main");
    expect(() => loadConfig({ TABLEMQ_SQLITE_THREAD: "both" })).toThrow(/TABLEMQ_SQLITE_THREAD must be one of worker\|main, got "both"/);
  });
});
