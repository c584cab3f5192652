// The overview: every table the token may see, with its counts, delivery state, subscribers, webhooks and
// a sparkline of the last two minutes' rates on this node; updated by the live feed.
import { useState } from "preact/hooks";
import { api, tablePath } from "./api.js";
import { Chart, columns } from "./chart.js";
import { can, formatCount, formatRate, html, Head } from "./html.js";

/** Creates a table with the default options (admin on every table); its options are then on its page. */
function CreateTable() {
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const create = async (e) => {
    e.preventDefault();
    try {
      await api("PUT", tablePath(name.trim()));
      location.hash = `#/tables/${encodeURIComponent(name.trim())}`;
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<form class="card create" onSubmit=${create} aria-labelledby="create-title">
    <h2 id="create-title">New table</h2>
    <label for="new-table">Name <small>(a-z, 0-9 and _, starting with a letter)</small></label>
    <div class="row">
      <input id="new-table" value=${name} onInput=${(e) => setName(e.target.value)} required pattern="[a-z][a-z0-9_]{0,62}" />
      <button type="submit">Create</button>
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
  </form>`;
}

function Webhooks({ list }) {
  if (!list || list.length === 0) return "–";
  const down = list.filter((w) => w.state === "down").length;
  return html`${list.length}${down > 0 && html` <span class="badge bad">${down} down</span>`}`;
}

function Rates({ name, points }) {
  const last = points?.at(-1);
  return html`<div class="rates">
    ${points && points.length > 1
      ? html`<${Chart}
          spark
          series=${["enqueued", "delivered"]}
          data=${columns(points, ["enqueued", "delivered"])}
          height=${32}
          label=${`${name}: messages per second enqueued and delivered, last two minutes`}
        />`
      : html`<div class="chart spark"></div>`}
    <span class="rate-text">${formatRate(last?.enqueued)} in · ${formatRate(last?.delivered)} out /s</span>
  </div>`;
}

export function Overview({ tables, rates, whoami }) {
  if (tables === null) return html`<p class="loading">Loading tables…</p>`;
  const creator = can(whoami, "admin", "*") && html`<${CreateTable} />`;
  if (tables.length === 0)
    return html`${creator}
      <section class="card">
        <h1>Tables</h1>
        <p>
          No message tables yet (or none this token may see). Create one with <code>PUT /v1/tables/{name}</code> or
          <code>tablemq table create</code>.
        </p>
      </section>`;
  return html`<section>
    <h1>Tables</h1>
    <table class="tables">
      <caption class="sr-only">
        Message tables with their counts, updated live
      </caption>
      <${Head}
        columns=${[
          "Table",
          "Delivery",
          "Ready:num",
          "Delayed:num",
          "In flight:num",
          "Dead:num",
          "Subscribers:num",
          "Webhooks",
          "Rates (this node)",
        ]}
      />
      <tbody>
        ${tables.map(
          (t) =>
            html`<tr key=${t.name} data-table=${t.name}>
              <th scope="row" data-label="Table"><a href=${`#/tables/${encodeURIComponent(t.name)}`}>${t.name}</a></th>
              <td data-label="Delivery">
                ${t.options.paused ? html`<span class="badge warn">paused</span>` : html`<span class="badge ok">on</span>`}
              </td>
              <td class="num" data-label="Ready" data-count="ready">${formatCount(t.stats.ready)}</td>
              <td class="num" data-label="Delayed" data-count="delayed">${formatCount(t.stats.delayed)}</td>
              <td class="num" data-label="In flight" data-count="inFlight">${formatCount(t.stats.inFlight)}</td>
              <td class="num" data-label="Dead" data-count="dead">${formatCount(t.stats.dead)}</td>
              <td class="num" data-label="Subscribers">${formatCount(t.stats.receivers)}</td>
              <td data-label="Webhooks"><${Webhooks} list=${t.webhooks} /></td>
              <td data-label="Rates"><${Rates} name=${t.name} points=${rates[t.name]} /></td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${creator}
  </section>`;
}
