// A table's page: its counts and delivery state, rate and depth charts, the message browser, dead letters,
// webhook health, and (admin) pause/resume, purge and its options.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, tablePath } from "./api.js";
import { Chart, columns } from "./chart.js";
import { Confirm } from "./confirm.js";
import { DeadLetters } from "./dead.js";
import { can, canLook, formatCount, formatTime, html, relative, Head } from "./html.js";
import { Messages } from "./messages.js";
import { Options } from "./options.js";

const RATE_KEYS = ["enqueued", "delivered", "acked"];
const DEPTH_KEYS = ["ready", "delayed", "inFlight"];
/** Chart points kept: the server's 15 minutes. */
const KEEP = 900;

function Counts({ d }) {
  const rows = [
    ["Ready", d.stats.ready, "ready"],
    ["Delayed", d.stats.delayed, "delayed"],
    ["In flight", d.stats.inFlight, "inFlight"],
    ["Acked", d.stats.acked, "acked"],
    ["Dead", d.stats.dead, "dead"],
    ["Subscribers", d.stats.receivers, "receivers"],
    ["Cached here", d.stats.cached, "cached"],
  ];
  return html`<dl class="counts">
    ${rows.map(
      ([label, n, key]) =>
        html`<div key=${key}>
          <dt>${label}</dt>
          <dd data-count=${key}>${formatCount(n)}</dd>
        </div>`,
    )}
  </dl>`;
}

function Webhooks({ list }) {
  if (!list || list.length === 0) return null;
  return html`<section class="card" aria-labelledby="webhooks-title">
    <h2 id="webhooks-title">Webhooks</h2>
    <table class="list">
      <${Head} columns=${["Name", "State", "Last error", "Next retry", "Held:num", "Last delivered"]} />
      <tbody>
        ${list.map(
          (w) =>
            html`<tr key=${w.name}>
              <td data-label="Name">${w.name}</td>
              <td data-label="State">
                <span class=${w.state === "up" ? "badge ok" : "badge bad"}>${w.state}</span>${w.driver === "other"
                  ? " (another node drives it)"
                  : ""}
              </td>
              <td data-label="Last error">${w.lastError ? html`${w.lastError} <small>(${relative(w.lastErrorAt)})</small>` : "–"}</td>
              <td data-label="Next retry">${w.nextRetryAt ? relative(w.nextRetryAt) : "–"}</td>
              <td class="num" data-label="Held">${w.held}</td>
              <td data-label="Last delivered">${w.lastDeliveredAt ? formatTime(w.lastDeliveredAt) : "–"}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

export function TablePage({ name, whoami, described, liveRates }) {
  const [fetched, setFetched] = useState(null);
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [history, setHistory] = useState({ rates: [], depth: [] });
  const [confirmPurge, setConfirmPurge] = useState(false);
  const admin = can(whoami, "admin", name);
  const look = canLook(whoami, name);
  // The live feed's description, or (until it comes, or after an action) one read now.
  const d = fetched && (!described || fetched.at > described.at) ? fetched : described;

  const reload = async () => {
    try {
      setFetched({ ...(await api("GET", tablePath(name))), at: Date.now() });
      setError("");
    } catch (err) {
      setError(err.status === 404 ? `There is no message table ${name}.` : err.message);
    }
  };
  useEffect(() => {
    void reload();
    api("GET", tablePath(name, "/history")).then(setHistory, () => {});
  }, [name]);

  // Live points after the history's.
  useEffect(() => {
    const last = liveRates?.at(-1);
    if (!last) return;
    setHistory((h) => (h.rates.length > 0 && h.rates.at(-1).t >= last.t ? h : { ...h, rates: [...h.rates, last].slice(-KEEP) }));
  }, [liveRates]);
  useEffect(() => {
    if (!described) return;
    const point = { t: Date.now(), ...described.stats };
    setHistory((h) => ({ ...h, depth: [...h.depth, point].slice(-KEEP) }));
  }, [described]);
  const rateData = useMemo(() => columns(history.rates, RATE_KEYS), [history.rates]);
  const depthData = useMemo(() => columns(history.depth, DEPTH_KEYS), [history.depth]);

  const act = async (method, rest, said) => {
    try {
      const answer = await api(method, tablePath(name, rest));
      setNotice(said(answer));
      await reload();
    } catch (err) {
      setError(err.message);
    }
  };

  if (!d) return html`<p class=${error ? "error" : "loading"} role=${error ? "alert" : "status"}>${error || `Loading ${name}…`}</p>`;
  const unacked = d.stats.ready + d.stats.delayed + d.stats.inFlight;
  return html`<div class="table-page">
    <header class="page-head">
      <h1>
        ${name}
        ${d.options.paused
          ? html`<span class="badge warn" data-state="paused">paused</span>`
          : html`<span class="badge ok" data-state="on">delivering</span>`}
      </h1>
      ${admin &&
      html`<div class="buttons">
        ${d.options.paused
          ? html`<button onClick=${() => act("POST", "/resume", () => `${name} resumed: delivery goes on.`)}>Resume</button>`
          : html`<button onClick=${() => act("POST", "/pause", () => `${name} paused: nothing is delivered until it is resumed.`)}>
              Pause
            </button>`}
        <button class="danger" onClick=${() => setConfirmPurge(true)}>Purge</button>
      </div>`}
    </header>
    <p class="notice" role="status">${notice}</p>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <${Counts} d=${d} />
    <div class="charts">
      <section class="card">
        <h2>Rates on this node (per second)</h2>
        <${Chart} series=${RATE_KEYS} data=${rateData} label=${`${name}: messages enqueued, delivered and acked per second`} />
      </section>
      <section class="card">
        <h2>Depth</h2>
        <${Chart} series=${DEPTH_KEYS} data=${depthData} label=${`${name}: ready, delayed and in-flight messages`} />
      </section>
    </div>
    ${look && html`<${Messages} table=${name} whoami=${whoami} onNotice=${(said) => (setNotice(said), void reload())} />`}
    ${look &&
    html`<${DeadLetters} table=${name} whoami=${whoami} dead=${d.stats.dead} onNotice=${(said) => (setNotice(said), void reload())} />`}
    <${Webhooks} list=${d.webhooks} />
    ${admin &&
    html`<${Options}
      key=${JSON.stringify(d.options)}
      table=${name}
      options=${d.options}
      onNotice=${(said) => (setNotice(said), void reload())}
    />`}
    ${confirmPurge &&
    html`<${Confirm}
      title=${`Purge ${name}?`}
      action=${`Delete ${formatCount(unacked)} messages`}
      danger
      onCancel=${() => setConfirmPurge(false)}
      onConfirm=${() => {
        setConfirmPurge(false);
        void act("POST", "/purge", (a) => `Purged ${formatCount(a.purged)} messages of ${name}.`);
      }}
      ><p>
        All <strong data-purge-count>${formatCount(unacked)}</strong> unacked messages of ${name} (ready, delayed and in flight) are deleted
        for good. Dead letters stay.
      </p><//
    >`}
  </div>`;
}
