// The tablemq dashboard: the token (when the server asks for one), the live feed, and two pages chosen by
// the URL's hash: the overview (#/) and a table (#/tables/<name>).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, follow, tokenStore } from "./api.js";
import { html } from "./html.js";
import { Overview } from "./overview.js";
import { TablePage } from "./table.js";

/** Rate points kept per table for the overview's sparklines: two minutes. */
const SPARK_POINTS = 120;

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function TokenForm({ error, onToken }) {
  const [value, setValue] = useState("");
  const submit = (e) => {
    e.preventDefault();
    onToken(value.trim());
  };
  return html`<main class="narrow">
    <h1>tablemq</h1>
    <form class="card" onSubmit=${submit} aria-describedby="token-help">
      <h2>Sign in</h2>
      <p id="token-help">This server needs a bearer token (one of TABLEMQ_AUTH_TOKENS). It is kept for this tab only.</p>
      <label for="token">Access token</label>
      <input id="token" type="password" autocomplete="off" value=${value} onInput=${(e) => setValue(e.target.value)} required />
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <button type="submit">Sign in</button>
    </form>
  </main>`;
}

function App() {
  const hash = useHash();
  const [whoami, setWhoami] = useState(null);
  const [authError, setAuthError] = useState("");
  const [needToken, setNeedToken] = useState(false);
  const [tables, setTables] = useState(null);
  const [rates, setRates] = useState({});
  const [live, setLive] = useState(false);

  const identify = async () => {
    try {
      setWhoami(await api("GET", "/v1/whoami"));
      setNeedToken(false);
      setAuthError("");
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        setNeedToken(true);
        setAuthError(tokenStore.get() ? "That token is not valid." : "");
        tokenStore.set("");
      } else setAuthError(err.message);
    }
  };
  useEffect(() => void identify(), []);

  useEffect(() => {
    if (!whoami) return undefined;
    const stop = new AbortController();
    void follow(
      (name, data) => {
        if (name === "tables") setTables(data.tables.map((t) => ({ ...t, at: Date.now() })));
        if (name === "rates") {
          setRates((before) => {
            const next = {};
            for (const [table, point] of Object.entries(data.tables)) {
              next[table] = [...(before[table] ?? []), { t: data.t, ...point }].slice(-SPARK_POINTS);
            }
            return next;
          });
        }
      },
      setLive,
      stop.signal,
    );
    return () => stop.abort();
  }, [whoami]);

  if (needToken) {
    return html`<${TokenForm}
      error=${authError}
      onToken=${(token) => {
        tokenStore.set(token);
        void identify();
      }}
    />`;
  }
  if (!whoami) return html`<p class="loading">${authError || "Loading tablemq…"}</p>`;

  const signOut = () => {
    tokenStore.set("");
    setWhoami(null);
    setTables(null);
    void identify();
  };
  const route = /^#\/tables\/([^/]+)$/.exec(hash);
  const table = route ? decodeURIComponent(route[1]) : undefined;
  return html`<div class="shell">
    <header class="top">
      <a class="brand" href="#/">tablemq</a>
      <nav aria-label="Breadcrumb">
        ${table ? html`<a href="#/">Tables</a> / <span aria-current="page">${table}</span>` : html`<span aria-current="page">Tables</span>`}
      </nav>
      <span class=${live ? "live on" : "live"} role="status">${live ? "live" : "reconnecting…"}</span>
      ${whoami.authentication && html`<button class="link" onClick=${signOut}>Sign out</button>`}
    </header>
    <main>
      ${table
        ? html`<${TablePage}
            key=${table}
            name=${table}
            whoami=${whoami}
            described=${tables?.find((t) => t.name === table)}
            liveRates=${rates[table]}
          />`
        : html`<${Overview} tables=${tables} rates=${rates} whoami=${whoami} />`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
