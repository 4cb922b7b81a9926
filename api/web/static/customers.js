// The office's customer book: login (as on the dispatcher's map), then the search with
// its filters and results, the customer map, the detail panel and the approvals list.
// Each part lives in its own module; this one starts them and connects them.

import { ApiError, get, onUnauthorized, takeTokenFromFragment, token } from "./api.js";
import { Basemap } from "./basemap.js";
import { APPROVE_ROLES, BOOK_ROLES, EDIT_ROLES, OPERATIONS_ROLES, book } from "./customers-api.js";
import { ApprovalsPanel } from "./customers-changes.js";
import { DetailPanel } from "./customers-detail.js";
import { CustomerMap, renderLegend } from "./customers-map.js";
import { Filters, SearchPanel } from "./customers-search.js";
import { setupSpreadsheets } from "./customers-spreadsheet.js";
import { setTimeZone } from "./format.js";
import { language, onLanguageChange, setLanguage, t, translatePage } from "./i18n.js";
import { setupLogin, showLogin } from "./login.js";
import { el, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
// Where the map opens when the company's street map cannot be read (Hà Đông, Hanoi).
const DEFAULT_CONFIG = {
  center: [20.9714, 105.7788],
  zoom: 15,
  bounds: null,
  tile_url: null,
  timezone: "Asia/Ho_Chi_Minh",
};

const session = {
  started: false,
  role: null,
  lists: { areas: [], staff: [] },
  filters: null,
  search: null,
  map: null,
  customerMap: null,
  detail: null,
  approvals: null,
};

function boot() {
  const switcher = $("lang-switch");
  switcher.value = language();
  switcher.addEventListener("change", () => setLanguage(switcher.value));
  setLanguage(language());
  onLanguageChange(relabel);
  exposeTestHelpers();
  takeTokenFromFragment();
  // A "#token=" link pasted into this open tab changes only the fragment: start afresh.
  window.addEventListener("hashchange", () => takeTokenFromFragment() && location.reload());
  onUnauthorized(() => showLogin("login.session_ended"));
  setupLogin({
    onLoggedIn: (user) => (session.started ? location.reload() : startSession(user)),
    onLoggedOut: () => showLogin(null),
  });
  $("fatal-retry").addEventListener("click", () => location.reload());
  if (token()) startSession(null);
  else showLogin();
}

async function startSession(user) {
  try {
    const me = user || (await get("/api/v1/me"));
    session.started = true;
    session.role = me.role;
    $("login-screen").hidden = true;
    $("app").hidden = false;
    for (const node of document.querySelectorAll("[data-session]")) node.hidden = false;
    $("user-name").textContent = me.full_name || me.username;
    if (!BOOK_ROLES.has(me.role)) {
      // A collector's or a driver's login: their book is on their phone, not here.
      $("fatal-text").textContent = t("cust.not_for_role");
      $("fatal").hidden = false;
      return;
    }
    // The map's configuration, street map and staff list are the operations roles' to
    // read; a cashier's page opens at the default place, without asking for them.
    const operations = OPERATIONS_ROLES.has(me.role);
    const config = operations ? await get("/api/v1/map/config") : DEFAULT_CONFIG;
    setTimeZone(config.timezone);
    $("tenant-name").textContent = config.tenant?.name || me.tenant || "";
    document.title = `Sanitrack · ${t("cust.nav_customers")}`;
    const [areas, staff] = await Promise.all([book.areas(), operations ? book.staff() : []]);
    session.lists = { areas, staff: [...staff].sort((a, b) => a.full_name.localeCompare(b.full_name, "vi")) };
    createParts(config);
    renderLegend($("map-legend"));
    await Promise.all([
      session.search.run(0),
      session.customerMap.refresh(),
      session.approvals.load(),
      config === DEFAULT_CONFIG
        ? null
        : new Basemap(session.map)
            .load(config)
            .catch((e) => toast(`${t("error.basemap")}: ${e.reason || e.message}`, "error")),
    ]);
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) return; // the login form shows
    $("fatal-text").textContent = `${t("cust.start_failed")}: ${failure.reason || failure.message}`;
    $("fatal").hidden = false;
  }
}

function createParts(config) {
  const filters = new Filters({ onChange: () => refreshAll() });
  filters.fill(session.lists.areas, session.lists.staff);
  $("class-names").replaceChildren(
    ...["household", "business_household", "business", "agency", "restaurant", "small_retail", "office"].map((name) =>
      el("option", { value: name }),
    ),
  );
  session.filters = filters;
  const snap = config.tile_url ? 1 : 0.25;
  const map = L.map("map", { zoomSnap: snap, zoomDelta: Math.max(snap, 0.5), minZoom: 3, maxZoom: 19 });
  L.control.scale({ metric: true, imperial: false }).addTo(map);
  map.attributionControl.setPrefix(false);
  if (config.bounds) map.fitBounds(config.bounds, { padding: [10, 10] });
  else map.setView(config.center || DEFAULT_CONFIG.center, config.zoom || 15);
  session.map = map;
  session.search = new SearchPanel({ filters, onSelect: (customerId, pointId) => select(customerId, pointId) });
  setupSpreadsheets({ canImport: EDIT_ROLES.has(session.role), onImported: () => refreshAll() });
  session.customerMap = new CustomerMap(map, {
    filters,
    collected: $("map-collected"),
    note: $("map-note"),
    onSelect: (pointId) => {
      session.customerMap.select(pointId);
      session.detail.showPoint(pointId);
    },
  });
  session.detail = new DetailPanel({
    role: session.role,
    lists: () => session.lists,
    onLocate: (point) => {
      session.customerMap.select(point.id);
      session.customerMap.showAt(point.lat, point.lon);
    },
    onChanged: () => refreshAll(),
  });
  session.approvals = new ApprovalsPanel({
    canDecide: APPROVE_ROLES.has(session.role),
    canCancel: EDIT_ROLES.has(session.role),
    onOpen: (customerId) => select(customerId, null),
    onDecided: (request) => {
      if (session.detail.customerId === request.customer_id) session.detail.reload();
      refreshAll();
    },
  });
}

function select(customerId, pointId) {
  if (pointId !== null) session.customerMap.select(pointId, true);
  session.detail.show(customerId, pointId);
}

function refreshAll() {
  session.search.run();
  session.customerMap.refresh();
  session.approvals.load();
}

function relabel() {
  translatePage(document);
  $("lang-switch").value = language();
  if (!session.search) return;
  session.filters.relabel();
  session.search.relabel();
  session.detail.relabel();
  session.approvals.relabel();
  session.customerMap.relabel();
  renderLegend($("map-legend"));
}

/** Read-only views for tests and for a curious clerk's console. */
function exposeTestHelpers() {
  Object.defineProperty(window, "sanitrackCustomers", {
    value: Object.freeze({
      mapState: () => ({ ...(session.customerMap?.last ?? {}), mapZoom: session.map?.getZoom() ?? null }),
      searches: () => session.search?.searches ?? 0,
      setView: (lat, lon, zoom) => session.map?.setView([lat, lon], zoom, { animate: false }),
    }),
    writable: false,
    configurable: false,
  });
}

boot();
