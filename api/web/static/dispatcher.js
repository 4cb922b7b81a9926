// The dispatcher's live map: login, then the map, the vehicles, today's routes and the
// alerts, kept current by the live feed. Every part lives in its own module; this one
// starts them, connects them and answers the feed's messages.

import { ApiError, forgetToken, get, onUnauthorized, post, takeTokenFromFragment, token } from "./api.js";
import { AlertPanel } from "./alerts.js";
import { Basemap } from "./basemap.js";
import { Directory } from "./directory.js";
import { learnServerTime, setTimeZone } from "./format.js";
import { language, onLanguageChange, setLanguage, t, translatePage } from "./i18n.js";
import { LiveConnection } from "./live.js";
import { setupLogin, showLogin } from "./login.js";
import { PlanningPanel } from "./planning.js";
import { RoutePanel, StopVisits } from "./routes.js";
import { el, toast } from "./ui.js";
import { VehiclePanel } from "./vehicle-panel.js";
import { VehicleLayer } from "./vehicles.js";

const OFFLINE_CHECK_MS = 5000;
const POSITIONS_POLL_MS = 5000; // only when the feed does not carry positions
const PLANNING_ROLES = new Set(["admin", "dispatcher"]); // the others read plans
const $ = (id) => document.getElementById(id);

const directory = new Directory();

const session = {
  started: false, // once a session ran, the next login reloads the page for a clean state
  live: null,
  map: null,
  vehicles: null,
  alerts: null,
  routes: null,
  planning: null,
  vehiclePanel: null,
  visits: new StopVisits(),
  timers: [],
  pollTimer: null,
  snapshots: 0,
  connection: "stopped",
};

// ------------------------------------------------------------ start

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
  onUnauthorized(() => endSession("login.session_ended"));
  setupLogin({
    // After a session ran, a clean state is a reload away (the token is kept).
    onLoggedIn: (user) => (session.started ? location.reload() : startSession(user)),
    onLoggedOut: () => endSession(null),
  });
  $("fatal-retry").addEventListener("click", () => location.reload());
  if (token()) startSession(null);
  else showLogin();
}

/** Stop everything live and show the login form (a 401, a 4401 or a logout). */
function endSession(messageKey) {
  session.live?.stop();
  for (const timer of session.timers) clearInterval(timer);
  session.timers = [];
  clearInterval(session.pollTimer);
  showLogin(messageKey);
}

function fatal(failure) {
  $("fatal-text").textContent = `${t("error.start_failed")}: ${failure.reason || failure.message}`;
  $("fatal").hidden = false;
}

async function startSession(user) {
  try {
    const me = user || (await get("/api/v1/me"));
    session.started = true;
    $("login-screen").hidden = true;
    $("app").hidden = false;
    for (const node of document.querySelectorAll("[data-session]")) node.hidden = false;
    $("user-name").textContent = me.full_name || me.username;
    const config = await get("/api/v1/map/config");
    setTimeZone(config.timezone);
    $("tenant-name").textContent = config.tenant?.name || me.tenant || "";
    document.title = `Sanitrack · ${config.tenant?.name || ""}`;
    const map = createMap(config);
    await directory.load();
    fillVehicleSearch();
    createParts(map, config, me);
    startLive();
    session.timers.push(setInterval(() => session.vehicles.tick(), OFFLINE_CHECK_MS));
    await Promise.all([
      new Basemap(map)
        .load(config)
        .catch((e) => toast(`${t("error.basemap")}: ${e.reason || e.message}`, "error")),
      session.routes.load().catch((e) => toast(`${t("error.routes")}: ${e.reason || e.message}`, "error")),
    ]);
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) return; // the login form shows
    fatal(failure);
  }
}

function createMap(config) {
  // Drawn streets scale to any zoom; tiles only look sharp at whole zoom levels.
  const snap = config.tile_url ? 1 : 0.25;
  const map = L.map("map", { zoomSnap: snap, zoomDelta: Math.max(snap, 0.5), minZoom: 10, maxZoom: 19 });
  L.control.scale({ metric: true, imperial: false }).addTo(map);
  map.attributionControl.setPrefix(false);
  if (config.bounds) map.fitBounds(config.bounds, { padding: [10, 10] });
  else map.setView(config.center || [21.0285, 105.8542], config.zoom || 13);
  session.map = map;
  return map;
}

function createParts(map, config, me) {
  const vehicles = new VehicleLayer(map, {
    directory,
    onSelect: selectVehicle,
    onChange: (record) => session.vehiclePanel?.onRecordChange(record),
  });
  vehicles.setOfflineAfter(config.offline_after_s || 180);
  session.vehicles = vehicles;
  session.alerts = new AlertPanel({
    list: $("alert-list"),
    counters: $("alert-counters"),
    empty: $("alert-empty"),
    filterNote: $("alert-filter"),
    directory,
    actions: {
      acknowledge: (id, note) => post(`/api/v1/alerts/${id}/acknowledge`, { note }),
      assign: (id, staffId) => post(`/api/v1/alerts/${id}/assign`, { staff_id: staffId }),
      resolve: (id, note) => post(`/api/v1/alerts/${id}/resolve`, { note }),
    },
    onLocate: locateAlert,
    onChange: (panel) => {
      const { byDevice, byVehicle } = panel.rings();
      vehicles.setAlertRings(byDevice, byVehicle);
      session.routes?.repaintStops();
    },
    announce: (text) => ($("announcer").textContent = text),
  });
  session.routes = new RoutePanel({
    map,
    elements: {
      title: $("routes-title"),
      date: $("route-date"),
      select: $("route-select"),
      search: $("route-search"),
      inView: $("route-in-view"),
      count: $("route-count"),
      details: $("route-details"),
      header: $("route-header"),
      summary: $("route-summary"),
      vehicleButton: $("route-vehicle"),
    },
    visits: session.visits,
    vehicles,
    alertsFor: (runId) => session.alerts.forRoute(runId),
    onShowVehicle: (vehicleId) => {
      const onMap = vehicles.devicesOfVehicle(vehicleId);
      const record = onMap.find((r) => r.kind === "truck") || onMap[0];
      if (record) selectVehicle(record.position.device_id, true);
      else toast(t("vehicle.no_position"));
    },
    onDateChange: (date, today) => session.planning?.setDate(date, today),
  });
  session.planning = new PlanningPanel({
    map,
    root: $("plan-panel"),
    toggle: $("plan-toggle"),
    canPlan: PLANNING_ROLES.has(me.role),
    directory,
    runsOfDay: () => session.routes.runs,
    onPlanned: () => session.routes.reload().catch((failure) => session.routes.failed(failure)),
    onShowRun: (runId) => session.routes.select(runId).catch((failure) => session.routes.failed(failure)),
  });
  session.vehiclePanel = new VehiclePanel({
    map,
    root: $("vehicle-panel"),
    directory,
    vehicles,
    alertsOf: (deviceId, vehicleId) =>
      [...session.alerts.alerts.values()].filter(
        (a) => a.device_id === deviceId || (vehicleId != null && a.vehicle_id === vehicleId),
      ),
    onClose: () => vehicles.select(null),
  });
}

// ------------------------------------------------------------ the live feed

function startLive() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  session.live = new LiveConnection({
    url: () => `${scheme}//${location.host}/ws/live?token=${encodeURIComponent(token() || "")}`,
    subscription: () => ({
      op: "subscribe",
      channels: ["positions", "alerts", "stops"],
      filter: { vehicles: [], routes: [] },
    }),
    onMessage: receive,
    onState: showConnection,
    onUnauthorized: () => {
      forgetToken();
      endSession("login.session_ended");
    },
  });
  session.live.start();
}

function receive(message) {
  switch (message.type) {
    case "position": // one fix, as the contract names it
      session.vehicles.push(message.position);
      break;
    case "positions": // the server's coalesced batch: the latest fix of each device that moved
      pushPositions(message);
      break;
    case "alert":
      session.alerts.apply(message.alert);
      break;
    case "stop_visit":
      session.visits.apply(message.visit);
      session.routes.onVisit(message.visit);
      break;
    case "heartbeat":
      learnServerTime(message.at);
      break;
    case "snapshot":
      applySnapshot(message);
      break;
    case "error":
      toast(`${t("live.error")}: ${message.reason}`, "error");
      break;
    default:
      break; // a newer server's message: nothing to do with it here
  }
}

/** A ``positions`` frame: compact ``columns`` and ``rows``, or a list of objects. */
function pushPositions(frame) {
  if (Array.isArray(frame.columns) && Array.isArray(frame.rows)) {
    const columns = frame.columns;
    for (const row of frame.rows) {
      const position = {};
      for (let i = 0; i < columns.length; i += 1) position[columns[i]] = row[i];
      session.vehicles.push(position);
    }
  } else {
    for (const position of frame.positions || []) session.vehicles.push(position);
  }
}

function applySnapshot(snapshot) {
  session.snapshots += 1;
  clearInterval(session.pollTimer);
  if (Array.isArray(snapshot.positions)) {
    session.vehicles.replaceAll(snapshot.positions);
  } else {
    // A feed without positions: read them, and keep reading them, over HTTP.
    pollPositions();
    session.pollTimer = setInterval(pollPositions, POSITIONS_POLL_MS);
  }
  session.alerts.replaceAll(snapshot.alerts || []);
  session.visits.replaceAll(snapshot.stop_visits || []);
  if (session.snapshots > 1) session.routes.reload().catch(() => {});
  else session.routes.repaintStops();
}

async function pollPositions() {
  try {
    for (const position of await get("/api/v1/positions/latest")) session.vehicles.push(position);
  } catch {
    // The connection indicator tells about the server; the next poll tries again.
  }
}

function showConnection(state, detail = {}) {
  session.connection = state;
  session.connectionDetail = detail;
  clearInterval(session.countdown);
  const box = $("connection-status");
  box.dataset.state = state;
  const text = box.querySelector(".connection-text");
  if (state !== "reconnecting") {
    text.textContent = t(`live.${state}`);
    return;
  }
  // Count down to the next try, so that a dispatcher sees the page is still trying.
  const retryAt = detail.retryAt ?? Date.now() + detail.retryInS * 1000;
  detail.retryAt = retryAt;
  const tick = () => {
    text.textContent = t("live.reconnecting", { s: Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) });
  };
  tick();
  session.countdown = setInterval(tick, 1000);
}

// ------------------------------------------------------------ selections

function selectVehicle(deviceId, pan = false) {
  session.vehicles.select(deviceId);
  session.vehiclePanel.show(deviceId);
  if (pan) {
    const at = session.vehicles.markerPosition(deviceId);
    if (at) session.map.setView(at, Math.max(session.map.getZoom(), 16));
  }
}

function locateAlert(alert) {
  if (!alert) return;
  const evidence = alert.evidence || {};
  let at = null;
  if (Number.isFinite(evidence.lat) && Number.isFinite(evidence.lon)) at = [evidence.lat, evidence.lon];
  at = at || session.vehicles.markerPosition(alert.device_id);
  if (!at && alert.vehicle_id != null) {
    const record = session.vehicles.devicesOfVehicle(alert.vehicle_id)[0];
    if (record) at = session.vehicles.markerPosition(record.position.device_id);
  }
  if (!at) {
    toast(t("alerts.no_position"));
    return;
  }
  session.map.setView(at, Math.max(session.map.getZoom(), 16));
  const ring = L.circleMarker(at, { radius: 26, className: "locate-pulse", interactive: false }).addTo(
    session.map,
  );
  setTimeout(() => ring.remove(), 3000);
  if (session.vehicles.record(alert.device_id)) session.vehicles.select(alert.device_id);
}

function fillVehicleSearch() {
  const options = [];
  for (const vehicle of directory.vehicles.values())
    options.push(el("option", { value: vehicle.code }, vehicle.name || ""));
  for (const person of directory.staffAll)
    options.push(el("option", { value: person.full_name }, person.code));
  $("vehicle-codes").replaceChildren(...options);
  $("vehicle-search").addEventListener("submit", (event) => {
    event.preventDefault();
    const wanted = $("vehicle-search-input").value.trim().toLocaleLowerCase();
    if (!wanted) return;
    const found = [...session.vehicles.records.values()].find((record) => {
      const vehicle = directory.vehicle(record.position.vehicle_id);
      const person = directory.staff(record.position.staff_id);
      return [vehicle?.code, vehicle?.name, person?.full_name, record.position.device]
        .filter(Boolean)
        .some((name) => name.toLocaleLowerCase() === wanted);
    });
    if (found) selectVehicle(found.position.device_id, true);
    else toast(t("search.not_found"));
  });
}

// ------------------------------------------------------------ language and tests

function relabel() {
  translatePage(document);
  $("lang-switch").value = language();
  showConnection(session.connection, session.connectionDetail);
  session.alerts?.relabel();
  session.routes?.relabel();
  session.planning?.relabel();
  session.vehicles?.relabel();
  session.vehiclePanel?.relabel();
}

/** Read-only views for tests and for a curious dispatcher's console. */
function exposeTestHelpers() {
  Object.defineProperty(window, "sanitrack", {
    value: Object.freeze({
      markerPosition: (deviceId) => session.vehicles?.markerPosition(deviceId) ?? null,
      alertIds: () => session.alerts?.ids() ?? [],
      trackPointCount: () => session.vehiclePanel?.replay.count() ?? 0,
      connection: () => session.connection,
      /** Where (x, y in the map's box) a place is drawn: to click the map at a place. */
      mapPoint: (lat, lon) => {
        const point = session.map?.latLngToContainerPoint([lat, lon]);
        return point ? [point.x, point.y] : null;
      },
    }),
    writable: false,
    configurable: false,
  });
}

boot();
