// The office's invoices: login (as on the other pages), then four tabs: billing runs, the
// invoices list with one invoice's detail and actions, adjustment proposals, and the
// series and seller. Each part lives in its own module; this one starts and connects them.

import "./invoices-i18n.js";
import { ApiError, onUnauthorized, takeTokenFromFragment, token } from "./api.js";
import { setTimeZone } from "./format.js";
import { language, onLanguageChange, setLanguage, t, translatePage } from "./i18n.js";
import { OPERATIONS_ROLES, READ_ROLES, WRITE_ROLES, invoicesApi } from "./invoices-api.js";
import { InvoiceDetail } from "./invoices-detail.js";
import { InvoiceList } from "./invoices-list.js";
import { ProposalsPanel } from "./invoices-proposals.js";
import { RunsPanel } from "./invoices-runs.js";
import { SetupPanel } from "./invoices-setup.js";
import { setupLogin, showLogin } from "./login.js";

const $ = (id) => document.getElementById(id);
const TABS = ["runs", "list", "proposals", "setup"];

const session = {
  started: false,
  role: null,
  tab: "runs",
  series: [],
  runs: null,
  list: null,
  detail: null,
  proposals: null,
  setup: null,
};

function boot() {
  const switcher = $("lang-switch");
  switcher.value = language();
  switcher.addEventListener("change", () => setLanguage(switcher.value));
  setLanguage(language());
  onLanguageChange(relabel);
  exposeTestHelpers();
  takeTokenFromFragment();
  window.addEventListener("hashchange", () => takeTokenFromFragment() && location.reload());
  onUnauthorized(() => showLogin("login.session_ended"));
  setupLogin({
    onLoggedIn: (user) => (session.started ? location.reload() : startSession(user)),
    onLoggedOut: () => showLogin(null),
  });
  $("fatal-retry").addEventListener("click", () => location.reload());
  for (const tab of TABS) $(`tab-${tab}`).addEventListener("click", () => showTab(tab));
  if (token()) startSession(null);
  else showLogin();
}

async function startSession(user) {
  try {
    const me = user || (await invoicesApi.me());
    session.started = true;
    session.role = me.role;
    $("login-screen").hidden = true;
    $("app").hidden = false;
    for (const node of document.querySelectorAll("[data-session]")) node.hidden = false;
    $("user-name").textContent = me.full_name || me.username;
    if (!READ_ROLES.has(me.role)) {
      $("fatal-text").textContent = t("inv.not_for_role");
      $("fatal").hidden = false;
      return;
    }
    // The map's configuration (the company's zone and name) and the staff list are the
    // operations roles' to read; a cashier's page keeps the default zone.
    const operations = OPERATIONS_ROLES.has(me.role);
    const config = operations ? await invoicesApi.mapConfig() : null;
    setTimeZone(config?.timezone || "Asia/Ho_Chi_Minh");
    $("tenant-name").textContent = config?.tenant?.name || me.tenant || "";
    document.title = `Sanitrack · ${t("inv.nav_invoices")}`;
    const [areas, staff] = await Promise.all([invoicesApi.areas(), operations ? invoicesApi.staff() : []]);
    createParts(areas, staff);
    showTab(session.tab);
    await Promise.all([session.setup.load(), session.runs.load(), session.list.reload(), session.proposals.load()]);
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) return; // the login form shows
    $("fatal-text").textContent = `${t("inv.start_failed")}: ${failure.reason || failure.message}`;
    $("fatal").hidden = false;
  }
}

function createParts(areas, staff) {
  const canWrite = WRITE_ROLES.has(session.role);
  session.list = new InvoiceList({ canWrite, onSelect: (id) => openInvoice(id) });
  session.list.fill(areas, [...staff].sort((a, b) => a.full_name.localeCompare(b.full_name, "vi")));
  session.detail = new InvoiceDetail({
    canWrite,
    onOpen: (id) => openInvoice(id),
    onChanged: (invoice, removedId) => {
      if (removedId) session.list.remove(removedId);
      else if (invoice) session.list.update(invoice);
      else session.list.reload();
      session.runs.load();
    },
  });
  session.runs = new RunsPanel({
    canWrite,
    series: () => session.series,
    onShowInvoices: (runId) => {
      showTab("list");
      session.detail.clear();
      session.list.showRun(runId);
    },
    onChanged: () => session.list.reload(),
  });
  session.proposals = new ProposalsPanel({
    canWrite,
    onOpen: (id) => openInvoice(id),
    onChanged: () => session.list.reload(),
  });
  session.setup = new SetupPanel({
    canWrite,
    onSeries: (series) => {
      session.series = series;
      session.runs.fillSeries();
    },
    onSeller: (seller) => {
      $("seller-warning").hidden = Boolean(seller);
    },
  });
}

function showTab(tab) {
  session.tab = tab;
  for (const name of TABS) {
    const selected = name === tab;
    $(`tab-${name}`).setAttribute("aria-selected", String(selected));
    $(`panel-${name}`).hidden = !selected;
  }
  // What others may have changed meanwhile is read again when its tab opens.
  if (tab === "setup") session.setup?.load();
  if (tab === "proposals") session.proposals?.load();
}

function openInvoice(invoiceId) {
  showTab("list");
  session.list.select(invoiceId);
  return session.detail.show(invoiceId);
}

function relabel() {
  translatePage(document);
  $("lang-switch").value = language();
  if (!session.list) return;
  session.list.relabel();
  session.detail.relabel();
  session.runs.relabel();
  session.proposals.relabel();
  session.setup.relabel();
}

/** Read-only views for tests and for a curious clerk's console. */
function exposeTestHelpers() {
  Object.defineProperty(window, "sanitrackInvoices", {
    value: Object.freeze({
      tab: () => session.tab,
      shownInvoice: () => session.detail?.invoice?.id ?? null,
      loaded: () => session.list?.invoices.length ?? 0,
    }),
    writable: false,
    configurable: false,
  });
}

boot();
