/** How the report writes figures (report*.ts): one rule for every section. */

/** A number with `digits` decimals and thousands separators; "–" for anything else. */
export const n = (v: unknown, digits = 0): string =>
  typeof v === "number" && Number.isFinite(v)
    ? v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "–";

/** Whether a target was met; a quick run's figures are too small to judge. */
export const verdict = (quick: boolean, met: boolean): string => (quick ? "not judged in a quick run" : met ? "met" : "**not met**");
