import { format } from "mysql2";
import { describe, expect, it } from "vitest";
import { formatBound, poolOptions } from "../../../src/store/mysql/connect.js";

describe("formatBound (the pool's queryFormat)", () => {
  it("is the pool's query formatter", () => {
    expect(poolOptions("mysql://root@127.0.0.1:3306/test").queryFormat).toBe(formatBound);
  });

  it("leaves a statement with nothing to bind as it is, question marks included", () => {
    const text = "INSERT INTO t (id, message) VALUES (1,'what? -- ''quoted'' ?'),(2,'?')";
    expect(formatBound(text, [])).toBe(text);
    expect(formatBound(text, undefined)).toBe(text);
  });

  it("binds values as mysql2 does", () => {
    const text = "UPDATE t SET time_acked = ?, note = ? WHERE id IN (1,2) AND msg = 'a ? b' AND x = ?";
    const values = [1700000000000000000n, "it's", null];
    expect(formatBound(text, values)).toBe(format(text, values));
    expect(formatBound(text, values)).toBe(
      "UPDATE t SET time_acked = 1700000000000000000, note = 'it\\'s' WHERE id IN (1,2) AND msg = 'a ? b' AND x = NULL",
    );
  });
});
