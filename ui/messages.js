// The message browser of a table page: unacked messages by state and order, a page at a time, read without
// delivering them; one opens in a viewer with its payload, and (admin) can be made due now or deleted.
import { useEffect, useState } from "preact/hooks";
import { api, tablePath } from "./api.js";
import { Confirm } from "./confirm.js";
import { can, formatTime, html, relative, Head } from "./html.js";

const STATES = [
  ["", "All"],
  ["ready", "Ready"],
  ["delayed", "Delayed"],
  ["inFlight", "In flight"],
];
const ORDERS = [
  ["next", "Next due first"],
  ["newest", "Newest first"],
];
const PAGE = 25;

function Viewer({ table, message, admin, onDone, onClose }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState("");
  const act = async (method, rest, said) => {
    try {
      await api(method, tablePath(table, rest));
      onDone(said);
    } catch (err) {
      setError(err.message);
    }
  };
  const id = encodeURIComponent(message.id);
  return html`<section class="viewer card" aria-labelledby="viewer-title">
    <header>
      <h3 id="viewer-title">Message ${message.id}</h3>
      <button class="link" onClick=${onClose} aria-label="Close the message">Close</button>
    </header>
    <dl class="fields">
      <dt>State</dt>
      <dd>${message.state}</dd>
      <dt>Priority</dt>
      <dd>${message.priority}</dd>
      <dt>Attempts (epoch)</dt>
      <dd>${message.epoch}</dd>
      <dt>Due</dt>
      <dd>${formatTime(message.dueAt)} (${relative(message.dueAt)})</dd>
    </dl>
    <h4>Payload</h4>
    <pre class="payload" tabindex="0" aria-label="Payload">${JSON.stringify(message.payload, null, 2)}</pre>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${admin &&
    html`<div class="buttons">
      <button
        onClick=${() => act("POST", `/messages/${id}/deliver`, `Message ${message.id} is due now.`)}
        disabled=${message.state === "ready"}
      >
        Deliver now
      </button>
      <button class="danger" onClick=${() => setConfirming(true)}>Delete</button>
    </div>`}
    ${confirming &&
    html`<${Confirm}
      title="Delete this message?"
      action="Delete message"
      danger
      onCancel=${() => setConfirming(false)}
      onConfirm=${() => {
        setConfirming(false);
        void act("DELETE", `/messages/${id}`, `Message ${message.id} deleted.`);
      }}
      >Message ${message.id} of ${table} is deleted for good: it is not delivered again.<//
    >`}
  </section>`;
}

export function Messages({ table, whoami, onNotice }) {
  const [state, setState] = useState("");
  const [order, setOrder] = useState("next");
  const [page, setPage] = useState({ messages: [], next: undefined, loading: true });
  const [open, setOpen] = useState(null);
  const [error, setError] = useState("");
  const admin = can(whoami, "admin", table);

  const load = async (cursor) => {
    const query = new URLSearchParams({ order, limit: String(PAGE) });
    if (state) query.set("state", state);
    if (cursor) query.set("cursor", cursor);
    try {
      const got = await api("GET", tablePath(table, `/messages?${query}`));
      setPage((before) => ({ messages: cursor ? [...before.messages, ...got.messages] : got.messages, next: got.next, loading: false }));
      setError("");
    } catch (err) {
      setError(err.message);
      setPage((before) => ({ ...before, loading: false }));
    }
  };
  useEffect(() => {
    setOpen(null);
    void load();
  }, [state, order]);

  const openMessage = async (id) => {
    try {
      setOpen(await api("GET", tablePath(table, `/messages/${encodeURIComponent(id)}`)));
    } catch (err) {
      setError(err.message);
    }
  };

  return html`<section class="card" aria-labelledby="messages-title">
    <header>
      <h2 id="messages-title">Messages</h2>
      <div class="filters">
        <label
          >State
          <select value=${state} onChange=${(e) => setState(e.target.value)}>
            ${STATES.map(([v, label]) => html`<option value=${v}>${label}</option>`)}
          </select></label
        >
        <label
          >Order
          <select value=${order} onChange=${(e) => setOrder(e.target.value)}>
            ${ORDERS.map(([v, label]) => html`<option value=${v}>${label}</option>`)}
          </select></label
        >
        <button onClick=${() => load()}>Refresh</button>
      </div>
    </header>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${page.messages.length === 0 && !page.loading
      ? html`<p>No unacked messages${state ? " in this state" : ""}.</p>`
      : html`<table class="list" aria-label="Unacked messages">
          <${Head} columns=${["Id", "State", "Priority:num", "Attempts:num", "Due"]} />
          <tbody>
            ${page.messages.map(
              (m) =>
                html`<tr key=${m.id} data-message=${m.id}>
                  <td data-label="Id">
                    <button class="link mono" onClick=${() => openMessage(m.id)} aria-label=${`Open message ${m.id}`}>${m.id}</button>
                  </td>
                  <td data-label="State">${m.state}</td>
                  <td class="num" data-label="Priority">${m.priority}</td>
                  <td class="num" data-label="Attempts">${m.epoch}</td>
                  <td data-label="Due" title=${formatTime(m.dueAt)}>${relative(m.dueAt)}</td>
                </tr>`,
            )}
          </tbody>
        </table>`}
    ${page.next && html`<button onClick=${() => load(page.next)}>Load more</button>`}
    ${open &&
    html`<${Viewer}
      table=${table}
      message=${open}
      admin=${admin}
      onClose=${() => setOpen(null)}
      onDone=${(said) => {
        onNotice(said);
        setOpen(null);
        void load();
      }}
    />`}
  </section>`;
}
