// A table's options (admin): each option as a number field; Save sends the changed ones (PUT /v1/tables/{table}).
import { useState } from "preact/hooks";
import { api, tablePath } from "./api.js";
import { html } from "./html.js";

const FIELDS = [
  ["ackWaitMs", "Ack wait (ms)", 1],
  ["minBackoffMs", "Min backoff (ms)", 0],
  ["maxBackoffMs", "Max backoff (ms, 0 = a day)", 0],
  ["maxAttempts", "Max attempts (0 = unlimited)", 0],
  ["batchSize", "Batch size", 1],
  ["cacheSize", "Cache size", 1],
  ["pollIntervalMs", "Poll interval (ms)", 1],
  ["purgeAfterMs", "Purge acked after (ms)", 0],
];

export function Options({ table, options, onNotice }) {
  const [values, setValues] = useState(() => Object.fromEntries(FIELDS.map(([k]) => [k, String(options[k])])));
  const [error, setError] = useState("");
  const save = async (e) => {
    e.preventDefault();
    const changed = {};
    for (const [k] of FIELDS) if (Number(values[k]) !== options[k]) changed[k] = Number(values[k]);
    if (Object.keys(changed).length === 0) return onNotice("Nothing to change.");
    try {
      await api("PUT", tablePath(table), changed);
      setError("");
      onNotice(`Options saved: ${Object.keys(changed).join(", ")}.`);
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<form class="card options" onSubmit=${save} aria-labelledby="options-title">
    <h2 id="options-title">Options</h2>
    <div class="grid">
      ${FIELDS.map(
        ([k, label, min]) =>
          html`<label key=${k}>
            ${label}
            <input
              type="number"
              name=${k}
              min=${min}
              step="1"
              value=${values[k]}
              onInput=${(e) => setValues({ ...values, [k]: e.target.value })}
              required
            />
          </label>`,
      )}
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <button type="submit">Save options</button>
  </form>`;
}
