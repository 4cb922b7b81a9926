// The /api/v1 client: the token kept in localStorage, errors as ApiError with the
// server's {"error": {"field", "reason"}}, and one place that reacts to a 401.

const TOKEN_KEY = "sanitrack.token";

export class ApiError extends Error {
  constructor(status, field, reason, { retryAfterS = null, body = null } = {}) {
    super(reason || `HTTP ${status}`);
    this.status = status; // 0: the server was not reached
    this.field = field;
    this.reason = reason;
    this.retryAfterS = retryAfterS;
    this.body = body;
  }
}

let whenUnauthorized = () => {};

/** What to do when the server no longer accepts the token (show the login form). */
export function onUnauthorized(handler) {
  whenUnauthorized = handler;
}

export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: log in every time
  }
}

export function storeToken(value) {
  localStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

/**
 * Keep the token of a "#token=..." link (what `sanitrack demo` prints) and take it out of
 * the address bar, so that it is neither bookmarked nor shown on a shared screen.
 */
export function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const given = fragment.get("token");
  if (!given) return false;
  storeToken(given);
  history.replaceState(null, "", location.pathname + location.search);
  return true;
}

/** Call the API; the parsed JSON (null for 204), or an ApiError. */
export async function request(method, path, body, { authenticated = true, signal } = {}) {
  const headers = { Accept: "application/json" };
  const current = token();
  if (authenticated && current) headers.Authorization = `Bearer ${current}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, null, String(error.message || error));
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const detail = (data && data.error) || {};
  const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  const error = new ApiError(response.status, detail.field ?? null, detail.reason ?? null, {
    retryAfterS: Number.isNaN(retry) ? null : retry,
    body: data,
  });
  if (response.status === 401 && authenticated) {
    forgetToken();
    whenUnauthorized();
  }
  throw error;
}

export const get = (path, options) => request("GET", path, undefined, options);
export const post = (path, body, options) => request("POST", path, body, options);
export const put = (path, body, options) => request("PUT", path, body, options);

/** A query string from an object, leaving out null and undefined values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === null || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(name, String(item));
  }
  return search.toString();
}
