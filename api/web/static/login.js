// Signing in and out: the login form with the server's reasons for a refusal (wrong
// password, account locked until a time, too many tries), and the logout button.

import { forgetToken, post, storeToken } from "./api.js";
import { whenText } from "./format.js";
import { t } from "./i18n.js";

const TENANT_KEY = "sanitrack.tenant";
const $ = (id) => document.getElementById(id);

/**
 * @param {object} handlers
 * @param {(user: object) => void} handlers.onLoggedIn the token is stored
 * @param {() => void} handlers.onLoggedOut the token is dropped
 */
export function setupLogin({ onLoggedIn, onLoggedOut }) {
  $("login-form").addEventListener("submit", (event) => login(event, onLoggedIn));
  $("logout-button").addEventListener("click", async () => {
    try {
      await post("/api/v1/auth/logout");
    } catch {
      // The token is dropped here whatever the server said; it expires there by itself.
    }
    forgetToken();
    onLoggedOut();
  });
}

/** Hide the map and show the login form, with a message (a translation key) or none. */
export function showLogin(messageKey = null) {
  $("app").hidden = true;
  for (const node of document.querySelectorAll("[data-session]")) node.hidden = true;
  $("login-screen").hidden = false;
  $("login-error").textContent = messageKey ? t(messageKey) : "";
  const tenant = $("login-tenant");
  if (!tenant.value) tenant.value = localStorage.getItem(TENANT_KEY) || "";
  (tenant.value ? $("login-username") : tenant).focus();
}

async function login(event, onLoggedIn) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("login-error");
  const submit = $("login-submit");
  const fields = Object.fromEntries(new FormData(form));
  const missing = ["tenant", "username", "password"].find((name) => !String(fields[name] || "").trim());
  if (missing) {
    error.textContent = t("login.missing", { field: t(`login.${missing}`) });
    form.elements[missing].focus();
    return;
  }
  const tenant = fields.tenant.trim().toLowerCase(); // company codes are lower-case slugs
  submit.disabled = true;
  error.textContent = "";
  try {
    const answer = await post(
      "/api/v1/auth/login",
      { tenant, username: fields.username.trim(), password: fields.password },
      { authenticated: false },
    );
    storeToken(answer.token);
    localStorage.setItem(TENANT_KEY, tenant);
    form.elements.password.value = "";
    submit.disabled = false;
    onLoggedIn(answer.user);
  } catch (failure) {
    error.textContent = refusal(failure);
    if (failure.status === 429 && failure.retryAfterS) {
      // Too many tries: the button comes back when the server will listen again.
      setTimeout(() => (submit.disabled = false), failure.retryAfterS * 1000);
      return;
    }
    submit.disabled = false;
  }
}

/** Why the login failed, in the dispatcher's language, with the server's reason. */
function refusal(failure) {
  const reason = failure.reason ? ` (${failure.reason})` : "";
  switch (failure.status) {
    case 0:
      return t("login.unreachable");
    case 401:
      return t("login.wrong") + reason;
    case 423: {
      const detail = failure.body?.error || {};
      const until = detail.locked_until || detail.until;
      return (until ? t("login.locked_until", { until: whenText(until) }) : t("login.locked")) + reason;
    }
    case 429: {
      const wait = failure.retryAfterS;
      return (wait ? t("login.too_many_wait", { s: wait }) : t("login.too_many")) + reason;
    }
    default:
      return `${t("login.failed")}${reason || ` (HTTP ${failure.status})`}`;
  }
}
