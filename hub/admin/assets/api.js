// The management API: the API key typed in (kept in sessionStorage for this tab) or, without one, the
// single sign-on session cookie; X-Hub-Console marks calls a cross-site form could not make.

const KEY = "hubKey";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function getKey() { return sessionStorage.getItem(KEY) || ""; }
export function setKey(key) { if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY); }

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function api(path, {method = "GET", body, params} = {}) {
  const headers = {"X-Hub-Console": "1"};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const resp = await fetch(path + query(params), {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = data && data.error;
    const field = err && err.details && err.details.field ? ` (${err.details.field})` : "";
    throw new ApiError(resp.status, err ? err.code : "http_error", (err ? err.message : resp.statusText) + field, err && err.details);
  }
  return data;
}

// Names of sources, targets and routes, loaded once per view: the console shows names, not ids.
let cache = null;
export async function names(fresh = false) {
  if (!cache || fresh) {
    const [sources, targets, routes] = await Promise.all([api("/api/v1/sources"), api("/api/v1/targets"), api("/api/v1/routes")]);
    cache = {
      sources, targets, routes,
      source: new Map(sources.map((s) => [s.id, s])),
      target: new Map(targets.map((t) => [t.id, t])),
      route: new Map(routes.map((r) => [r.id, r])),
    };
  }
  return cache;
}
export function forgetNames() { cache = null; }
