// A table's dead letters: newest first, a page at a time, with their reasons; (admin) redrive one, the
// selected ones, or all of them.
import { useEffect, useState } from "preact/hooks";
import { api, tablePath } from "./api.js";
import { Confirm } from "./confirm.js";
import { can, formatTime, html, Head } from "./html.js";

const PAGE = 25;

export function DeadLetters({ table, whoami, dead, onNotice }) {
  const [page, setPage] = useState({ messages: [], next: undefined });
  const [selected, setSelected] = useState(new Set());
  const [confirmAll, setConfirmAll] = useState(false);
  const [error, setError] = useState("");
  const admin = can(whoami, "admin", table);

  const load = async (cursor) => {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (cursor) query.set("cursor", cursor);
    try {
      const got = await api("GET", tablePath(table, `/dead?${query}`));
      setPage((before) => ({ messages: cursor ? [...before.messages, ...got.messages] : got.messages, next: got.next }));
      setError("");
    } catch (err) {
      setError(err.message);
    }
  };
  // Again whenever the count changes (a message died, or was redriven elsewhere).
  useEffect(() => void load(), [dead]);

  const redrive = async (which, said) => {
    try {
      const { redriven } = await api("POST", tablePath(table, "/redrive"), which);
      onNotice(`${said}: ${redriven} redriven.`);
      setSelected(new Set());
      await load();
    } catch (err) {
      setError(err.message);
    }
  };
  const toggle = (id) =>
    setSelected((before) => {
      const next = new Set(before);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return html`<section class="card" aria-labelledby="dead-title">
    <header>
      <h2 id="dead-title">Dead letters</h2>
      ${admin &&
      page.messages.length > 0 &&
      html`<div class="buttons">
        <button onClick=${() => redrive({ ids: [...selected] }, "Selected")} disabled=${selected.size === 0}>
          Redrive selected (${selected.size})
        </button>
        <button onClick=${() => setConfirmAll(true)}>Redrive all</button>
      </div>`}
    </header>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${page.messages.length === 0
      ? html`<p>No dead letters.</p>`
      : html`<table class="list" aria-label="Dead letters">
          <${Head} columns=${[admin && { hidden: "Select" }, "Id", "Reason", "Attempts:num", "Died", admin && { hidden: "Actions" }]} />
          <tbody>
            ${page.messages.map(
              (m) =>
                html`<tr key=${m.id} data-dead=${m.id}>
                  ${admin &&
                  html`<td>
                    <input
                      type="checkbox"
                      aria-label=${`Select dead letter ${m.id}`}
                      checked=${selected.has(m.id)}
                      onChange=${() => toggle(m.id)}
                    />
                  </td>`}
                  <td class="mono" data-label="Id">${m.id}</td>
                  <td data-label="Reason">${m.reason}</td>
                  <td class="num" data-label="Attempts">${m.epoch}</td>
                  <td data-label="Died">${formatTime(m.deadAt)}</td>
                  ${admin &&
                  html`<td>
                    <button onClick=${() => redrive({ ids: [m.id] }, `Dead letter ${m.id}`)} aria-label=${`Redrive ${m.id}`}>
                      Redrive
                    </button>
                  </td>`}
                </tr>`,
            )}
          </tbody>
        </table>`}
    ${page.next && html`<button onClick=${() => load(page.next)}>Load more</button>`}
    ${confirmAll &&
    html`<${Confirm}
      title="Redrive every dead letter?"
      action=${`Redrive ${dead ?? "all"}`}
      onCancel=${() => setConfirmAll(false)}
      onConfirm=${() => {
        setConfirmAll(false);
        void redrive({ all: true }, "All");
      }}
      >${dead ?? "All"} dead letters of ${table} go back into the table, due now, with their attempts reset.<//
    >`}
  </section>`;
}
