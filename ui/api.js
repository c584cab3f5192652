// The dashboard's way to the API: JSON requests with the bearer token kept for this browser tab, and the
// live feed (GET /v1/events) read with fetch, which can send the token where EventSource cannot.
const TOKEN_KEY = "tablemq.token";

export const tokenStore = {
  get: () => sessionStorage.getItem(TOKEN_KEY) ?? "",
  set: (token) => (token ? sessionStorage.setItem(TOKEN_KEY, token) : sessionStorage.removeItem(TOKEN_KEY)),
};

/** An answer that was not 2xx: `status`, the API's error `code`, and its message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra = {}) {
  const token = tokenStore.get();
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

export async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "content-type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  const value = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new ApiError(res.status, value?.error?.code ?? "error", value?.error?.message ?? `${res.status} ${res.statusText}`);
  return value;
}

export const tablePath = (table, rest = "") => `/v1/tables/${encodeURIComponent(table)}${rest}`;

/**
 * Follows GET /v1/events: `onEvent(name, data)` for each event until `signal` aborts; reconnects after a
 * second when the stream ends or fails. `onState(connected)` tells whether it is live.
 */
export async function follow(onEvent, onState, signal) {
  while (!signal.aborted) {
    try {
      const res = await fetch("/v1/events", { headers: headers(), signal });
      if (!res.ok) throw new ApiError(res.status, "error", `live feed: ${res.status}`);
      onState(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length > 0) onEvent(name, JSON.parse(data.join("\n")));
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      console.warn("tablemq: live feed interrupted", err);
    }
    onState(false);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
