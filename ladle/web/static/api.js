// The public HTTP API, called with the signed-in user's token (kept in sessionStorage only).
const KEY = "ladle.token";

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set(token) { sessionStorage.setItem(KEY, token); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
  // The error as the API says it: "ERROR_CODE: message".
  toString() { return this.code ? `${this.code}: ${this.message}` : this.message; }
}

async function errorFrom(resp) {
  const text = await resp.text().catch(() => "");
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  if (body && typeof body === "object" && (body.message || body.error_code)) {
    return new ApiError(resp.status, body.error_code || "", body.message || resp.statusText, body.details);
  }
  return new ApiError(resp.status, "", text.trim() || `${resp.status} ${resp.statusText}`);
}

// Fetch and check: returns the Response for 2xx, throws ApiError otherwise. A 401 also tells
// the app to send the user to sign in.
export async function send(method, path, { body, accept = "application/json", signal, headers = {} } = {}) {
  const h = { Accept: accept, ...headers };
  const token = session.token;
  if (token) h.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    h["Content-Type"] = "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers: h, body: payload, signal, cache: "no-store" });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "NETWORK_ERROR", `Could not reach the ladle server: ${e.message}`);
  }
  if (resp.ok) return resp;
  const err = await errorFrom(resp);
  if (resp.status === 401) window.dispatchEvent(new CustomEvent("ladle:unauthenticated", { detail: err }));
  throw err;
}

export async function api(method, path, opts = {}) {
  const resp = await send(method, path, opts);
  const text = await resp.text();
  if (!text) return {};
  const type = resp.headers.get("content-type") || "";
  return type.includes("json") ? JSON.parse(text) : text;
}

export const get = (path, opts) => api("GET", path, opts);

export const enc = encodeURIComponent;
export const epPath = (name) => `/api/2.0/serving-endpoints/${enc(name)}`;

// Map an API message such as "config.served_entities.0.entity_name: ..." to the field it names.
export function fieldOf(message) {
  const m = /^([A-Za-z_][\w.\[\]]*)\s*:/.exec(message || "");
  return m ? m[1].replace(/\[(\d+)\]/g, ".$1") : null;
}
