// htm bound to Preact: JSX-like templates without a build step.
import { h } from "preact";
import htm from "htm";

export const html = htm.bind(h);

/** Whether the token's scopes (GET /v1/whoami) include `scope` on `table`, directly or through "*". */
export function can(whoami, scope, table) {
  const { scopes } = whoami;
  return (scopes[table] ?? []).includes(scope) || (scopes["*"] ?? []).includes(scope);
}

/** Looking at a table's messages, dead letters and rates: the `read` scope, or `consume`. */
export const canLook = (whoami, table) => can(whoami, "read", table) || can(whoami, "consume", table);

/**
 * A table's header row: each column a label, `label:num` for a right-aligned number column, or a
 * `{hidden}` label only screen readers get (a column of checkboxes or buttons); false columns are left out.
 */
export function Head({ columns }) {
  return html`<thead>
    <tr>
      ${columns
        .filter((c) => c !== false)
        .map((c) => {
          if (typeof c === "object") return html`<th scope="col"><span class="sr-only">${c.hidden}</span></th>`;
          const [label, kind] = c.split(":");
          return html`<th scope="col" class=${kind === "num" ? "num" : undefined}>${label}</th>`;
        })}
    </tr>
  </thead>`;
}

export const formatCount = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "–");

export function formatRate(n) {
  if (typeof n !== "number") return "–";
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : String(Math.round(n * 10) / 10);
}

export function formatTime(ms) {
  if (typeof ms !== "number") return "–";
  const d = new Date(ms);
  return d
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

/** "in 3 s", "12 s ago". */
export function relative(ms, now = Date.now()) {
  const s = Math.round((ms - now) / 1000);
  const abs = Math.abs(s);
  const text = abs < 120 ? `${abs} s` : abs < 7200 ? `${Math.round(abs / 60)} min` : `${Math.round(abs / 3600)} h`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}
