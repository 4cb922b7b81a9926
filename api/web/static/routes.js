// The planned routes of a date, today unless the dispatcher picks another (ARCHITECTURE §8):
// the list with its filters, and the chosen route drawn on the map: its expected path
// inside its corridor, its stops coloured by status (recoloured live by stop visits and
// missed-stop alerts), its compliance.

import { get, query } from "./api.js";
import { clockMinutes, clockTime, km, localDate, percent, serverNow } from "./format.js";
import { locale, t, tOr } from "./i18n.js";
import { debounce, el, toast } from "./ui.js";
import { ALERT_KINDS } from "./alerts.js";

// A stop only moves forward: a visit (or a late one) beats "missed", which beats "pending".
const STOP_RANK = { pending: 0, missed: 1, probable: 2, late: 3, visited: 3 };
const STOP_GLYPH = { visited: "✓", late: "!", probable: "?", missed: "✕" };
const COMPLIANCE_EVERY_MS = 60000;
const DETAIL_FETCHES_AT_ONCE = 3;
const STOP_NUMBERS_FROM_ZOOM = 15.5;

/** Stop visits of today by (route_run_id, stop_seq); the strongest evidence is kept. */
export class StopVisits {
  constructor() {
    this.visits = new Map();
  }

  replaceAll(visits) {
    this.visits.clear();
    for (const visit of visits) this.apply(visit);
  }

  apply(visit) {
    const key = `${visit.route_run_id}:${visit.stop_seq}`;
    const known = this.visits.get(key);
    if (!known || STOP_RANK[visitStatus(visit)] >= STOP_RANK[visitStatus(known)]) {
      this.visits.set(key, visit);
    }
  }

  get(routeRunId, stopSeq) {
    return this.visits.get(`${routeRunId}:${stopSeq}`) || null;
  }
}

function visitStatus(visit) {
  if (visit.status === "probable") return "probable";
  return visit.late ? "late" : "visited";
}

/** The status to show: the server's, moved forward by what arrived since. */
export function stopStatus(stop, visit, missedAlert) {
  let status = stop.status;
  if (visit && STOP_RANK[visitStatus(visit)] > STOP_RANK[status]) status = visitStatus(visit);
  if (missedAlert && status === "pending") status = "missed";
  return status;
}

// Routes under way first, cancelled ones last.
const RUN_ORDER = { active: 0, planned: 1, completed: 2, cancelled: 3 };

function runRank(run) {
  return RUN_ORDER[run.status] ?? 1;
}

/** "08/12/2026" for "2026-12-08", in the page's language. */
export function dateText(date) {
  const at = Date.parse(`${date}T00:00:00Z`);
  if (Number.isNaN(at)) return String(date ?? "");
  return new Intl.DateTimeFormat(locale(), {
    timeZone: "UTC",
    day: "2-digit",
    month: "2-digit",
    year: "numeric",
  }).format(at);
}

function metresPerPixel(map, lat) {
  return (40075016.686 * Math.abs(Math.cos((lat * Math.PI) / 180))) / 2 ** (map.getZoom() + 8);
}

export class RoutePanel {
  /**
   * @param {object} options
   * @param {L.Map} options.map
   * @param {object} options.elements title, date, select, search, inView, count, details,
   *   summary, vehicleButton
   * @param {StopVisits} options.visits
   * @param {object} options.vehicles the VehicleLayer
   * @param {(routeRunId: number) => object[]} options.alertsFor unresolved alerts of a run
   * @param {(vehicleId: number) => void} options.onShowVehicle
   * @param {(date: string, today: boolean) => void} options.onDateChange
   */
  constructor({ map, elements, visits, vehicles, alertsFor, onShowVehicle, onDateChange }) {
    this.map = map;
    this.elements = elements;
    this.visits = visits;
    this.vehicles = vehicles;
    this.alertsFor = alertsFor;
    this.onShowVehicle = onShowVehicle;
    this.onDateChange = onDateChange || (() => {});
    this.date = null;
    this.followsToday = true; // the date moves on at midnight only while it is today's
    this.loads = 0; // the answer of an earlier load, for another date, is dropped
    this.runs = [];
    this.bounds = new Map(); // route run id -> L.LatLngBounds of its path and stops
    this.fetching = new Set();
    this.selected = null; // {run, detail, stopMarkers: Map seq -> {stop, marker, status}}
    this.complianceTimer = null;
    map.createPane("route").style.zIndex = 420;
    map.createPane("stops").style.zIndex = 560;
    this.layer = L.layerGroup().addTo(map);
    this.refreshComplianceSoon = debounce(() => this.loadCompliance(), 2000);
    const refilter = debounce(() => this.renderOptions(), 250);
    elements.search.addEventListener("input", refilter);
    elements.inView.addEventListener("change", () => this.renderOptions());
    map.on("moveend", () => elements.inView.checked && refilter());
    map.on("zoomend", () => {
      this.resizeCorridor();
      map.getContainer().classList.toggle("stops-far", map.getZoom() < STOP_NUMBERS_FROM_ZOOM);
    });
    elements.select.addEventListener("change", () => {
      const id = Number.parseInt(elements.select.value, 10);
      this.select(Number.isNaN(id) ? null : id).catch((failure) => this.failed(failure));
    });
    elements.vehicleButton.addEventListener("click", () => {
      if (this.selected?.detail.vehicle_id != null) this.onShowVehicle(this.selected.detail.vehicle_id);
    });
    elements.date.addEventListener("change", () => {
      const wanted = elements.date.value;
      if (!wanted) {
        elements.date.value = this.date; // a cleared field goes back to the date shown
        return;
      }
      this.setDate(wanted).catch((failure) => this.failed(failure));
    });
    setInterval(() => {
      // A new local day: today's routes are other routes (unless another date was chosen);
      // the chosen date may have become today.
      const today = localDate(serverNow());
      if (this.date === null) return;
      if (this.followsToday && today !== this.date) {
        this.setDate(today).catch((failure) => this.failed(failure));
      } else if (!this.followsToday && today === this.date) {
        this.followsToday = true;
        this.fillTitle();
        this.onDateChange(this.date, true);
      }
    }, 60000);
  }

  failed(failure) {
    toast(`${t("error.routes")}: ${failure.reason || failure.message}`, "error");
  }

  isToday() {
    return this.date === localDate(serverNow());
  }

  /** Show another date's routes ("YYYY-MM-DD"). */
  async setDate(date) {
    if (date === this.date) return;
    this.date = date;
    this.followsToday = this.isToday();
    await this.select(null);
    this.fillTitle();
    this.onDateChange(this.date, this.isToday());
    await this.load();
  }

  fillTitle() {
    this.elements.date.value = this.date || "";
    this.elements.title.textContent = this.isToday()
      ? t("routes.title")
      : t("routes.title_date", { date: dateText(this.date) });
  }

  async load() {
    if (this.date === null) {
      this.date = localDate(serverNow());
      this.fillTitle();
      this.onDateChange(this.date, true);
    }
    const date = this.date;
    const loading = ++this.loads;
    const runs = await get(`/api/v1/route-runs?${query({ date })}`);
    if (loading !== this.loads) return; // a newer load (another date) is under way
    this.runs = runs;
    for (const run of this.runs) {
      if (run.bbox) {
        const [west, south, east, north] = run.bbox;
        this.bounds.set(run.id, L.latLngBounds([south, west], [north, east]));
      }
    }
    this.renderOptions();
    if (this.selected && !this.runs.some((r) => r.id === this.selected.run.id)) this.select(null);
  }

  matches(run) {
    const words = this.elements.search.value.trim().toLocaleLowerCase();
    if (words && !`${run.name} ${run.vehicle_code || ""}`.toLocaleLowerCase().includes(words)) {
      return false;
    }
    if (!this.elements.inView.checked) return true;
    const view = this.map.getBounds();
    const bounds = this.bounds.get(run.id);
    if (bounds) return view.intersects(bounds);
    const onMap = this.vehicles.devicesOfVehicle(run.vehicle_id);
    return onMap.some((r) => view.contains(r.marker.getLatLng()));
  }

  renderOptions() {
    if (this.elements.inView.checked) this.fetchMissingBounds();
    const select = this.elements.select;
    const chosen = this.selected?.run.id ?? null;
    const shown = this.runs
      .filter((run) => run.id === chosen || this.matches(run))
      .sort((a, b) => runRank(a) - runRank(b) || Date.parse(a.planned_start) - Date.parse(b.planned_start));
    const options = [el("option", { value: "" }, t("routes.choose"))];
    for (const run of shown) {
      const text = [
        run.name,
        run.vehicle_code || "–",
        `${clockMinutes(run.planned_start)}–${clockMinutes(run.planned_end)}`,
        t("routes.stops_n", { n: run.stops_total }),
        tOr(`route_status.${run.status}`, run.status),
      ].join(" · ");
      options.push(el("option", { value: run.id, selected: run.id === chosen }, text));
    }
    select.replaceChildren(...options);
    const loading = this.elements.inView.checked && this.fetching.size > 0;
    this.elements.count.textContent = t(loading ? "routes.count_loading" : "routes.count", {
      shown: shown.length,
      total: this.runs.length,
    });
  }

  /** The in-view filter needs each route's extent: the list gives it (``bbox``); a server
   * without it is asked for each route's details. */
  async fetchMissingBounds() {
    const missing = this.runs.filter((r) => !this.bounds.has(r.id) && !this.fetching.has(r.id));
    const next = async () => {
      const run = missing.shift();
      if (!run) return;
      this.fetching.add(run.id);
      try {
        this.remember(await get(`/api/v1/route-runs/${run.id}`));
      } catch {
        this.bounds.set(run.id, null); // not worth a retry storm; the vehicle test remains
      } finally {
        this.fetching.delete(run.id);
      }
      await next();
    };
    if (missing.length === 0) return;
    await Promise.all(Array.from({ length: DETAIL_FETCHES_AT_ONCE }, next));
    this.renderOptions();
  }

  remember(detail) {
    const points = (detail.expected_path?.coordinates || []).map(([lon, lat]) => [lat, lon]);
    for (const stop of detail.stops || []) points.push([stop.lat, stop.lon]);
    this.bounds.set(detail.id, points.length ? L.latLngBounds(points) : null);
  }

  async select(id) {
    this.layer.clearLayers();
    clearInterval(this.complianceTimer);
    this.selected = null;
    this.wanted = id;
    this.elements.details.hidden = true;
    this.elements.select.value = id === null ? "" : String(id);
    if (id === null) return;
    const run = this.runs.find((r) => r.id === id);
    const detail = await get(`/api/v1/route-runs/${id}`);
    if (this.wanted !== id) return; // another route was chosen meanwhile
    this.remember(detail);
    this.selected = { run, detail, stopMarkers: new Map() };
    this.draw(detail);
    this.fillHeader(run, detail);
    this.elements.details.hidden = false;
    const bounds = this.bounds.get(id);
    if (bounds) this.map.fitBounds(bounds, { padding: [40, 40], maxZoom: 17 });
    this.loadCompliance();
    this.complianceTimer = setInterval(() => this.loadCompliance(), COMPLIANCE_EVERY_MS);
  }

  draw(detail) {
    const path = (detail.expected_path?.coordinates || []).map(([lon, lat]) => [lat, lon]);
    if (path.length > 1) {
      this.corridor = L.polyline(path, {
        pane: "route",
        color: "#2c7fb8",
        opacity: 0.13,
        lineCap: "round",
        lineJoin: "round",
        interactive: false,
      }).addTo(this.layer);
      this.corridorM = detail.corridor_m || 0;
      L.polyline(path, {
        pane: "route",
        color: "#08519c",
        weight: 4,
        opacity: 0.85,
        dashArray: "10 6",
        interactive: false,
      }).addTo(this.layer);
      this.resizeCorridor();
    } else {
      this.corridor = null;
    }
    for (const stop of detail.stops || []) {
      const marker = L.marker([stop.lat, stop.lon], {
        pane: "stops",
        icon: L.divIcon({
          className: `stop-marker kind-${stop.kind}`,
          html: '<span class="stop-glyph"></span>',
          iconSize: [24, 24],
          iconAnchor: [12, 12],
        }),
        keyboard: false,
      });
      const entry = { stop, marker, status: null };
      marker.bindTooltip(() => this.stopTooltip(entry), { direction: "top", offset: [0, -12] });
      marker.on("add", () => {
        const element = marker.getElement();
        element.dataset.testid = "stop-marker";
        element.dataset.seq = stop.seq;
        entry.status = null;
        this.paintStop(entry);
      });
      this.selected.stopMarkers.set(stop.seq, entry);
      marker.addTo(this.layer);
    }
  }

  resizeCorridor() {
    if (!this.corridor) return;
    const lat = this.corridor.getBounds().getCenter().lat;
    const widthPx = (2 * this.corridorM) / metresPerPixel(this.map, lat);
    this.corridor.setStyle({ weight: Math.max(6, Math.min(widthPx, 400)) });
  }

  paintStop(entry) {
    const runId = this.selected.detail.id;
    const missed = this.alertsFor(runId).some(
      (a) => a.kind === "missed_stop" && a.stop_seq === entry.stop.seq,
    );
    const status = stopStatus(entry.stop, this.visits.get(runId, entry.stop.seq), missed);
    // Missed stays missed when its alert is closed by a person: only a visit moves it on.
    if (status === "missed" && entry.stop.status === "pending") entry.stop = { ...entry.stop, status };
    if (status === entry.status) return false;
    const element = entry.marker.getElement();
    if (!element) return false;
    element.classList.remove(`status-${entry.status}`);
    element.classList.add(`status-${status}`);
    element.dataset.status = status;
    element.firstElementChild.textContent = STOP_GLYPH[status] || String(entry.stop.seq);
    element.setAttribute(
      "aria-label",
      `${t("routes.stop")} ${entry.stop.seq}: ${t(`stop_status.${status}`)}`,
    );
    entry.status = status;
    if (entry.marker.isTooltipOpen()) entry.marker.getTooltip().update();
    return true;
  }

  stopTooltip(entry) {
    const { stop } = entry;
    const visit = this.visits.get(this.selected.detail.id, stop.seq);
    const visitedAt = visit?.arrival_at || stop.visited_at;
    return el(
      "div",
      {},
      el("strong", {}, `${t("routes.stop")} ${stop.seq} · ${t(`stop_kind.${stop.kind}`)}`),
      el("div", {}, `${t("routes.planned")}: ${clockMinutes(stop.planned_arrival)}`),
      el(
        "div",
        {},
        `${t("routes.window")}: ${clockMinutes(stop.window_start)}–${clockMinutes(stop.window_end)}`,
      ),
      el("div", {}, `${t("routes.status")}: ${t(`stop_status.${entry.status || stop.status}`)}`),
      visitedAt ? el("div", {}, `${t("routes.visited_at")}: ${clockTime(visitedAt)}`) : null,
    );
  }

  /** Recolour the chosen route's stops after visits or alerts changed. */
  repaintStops() {
    if (!this.selected) return false;
    let changed = false;
    for (const entry of this.selected.stopMarkers.values()) changed = this.paintStop(entry) || changed;
    return changed;
  }

  onVisit(visit) {
    if (this.selected && visit.route_run_id === this.selected.detail.id) {
      if (this.repaintStops()) this.refreshComplianceSoon();
    }
  }

  /** After a new snapshot: the server's view of the chosen route may have moved on. */
  async reload() {
    await this.load();
    if (this.selected) {
      const id = this.selected.run.id;
      const detail = await get(`/api/v1/route-runs/${id}`);
      if (this.selected?.run.id !== id) return;
      for (const stop of detail.stops) {
        const entry = this.selected.stopMarkers.get(stop.seq);
        if (entry) entry.stop = stop;
      }
      this.repaintStops();
      this.loadCompliance();
    }
  }

  fillHeader(run, detail) {
    const box = this.elements.header;
    box.replaceChildren(
      el("strong", {}, detail.name),
      el(
        "span",
        {},
        ` · ${clockMinutes(detail.planned_start)}–${clockMinutes(detail.planned_end)} · ${tOr(
          `route_status.${detail.status}`,
          detail.status,
        )} · ${t("routes.corridor")} ${detail.corridor_m} m`,
      ),
    );
    this.elements.vehicleButton.textContent = `${t("routes.vehicle")}: ${run?.vehicle_code || "–"}`;
    this.elements.vehicleButton.hidden = detail.vehicle_id == null;
  }

  async loadCompliance() {
    if (!this.selected) return;
    const id = this.selected.detail.id;
    let compliance;
    try {
      compliance = await get(`/api/v1/route-runs/${id}/compliance`);
    } catch {
      return; // the last figures stay; the next refresh tries again
    }
    if (this.selected?.detail.id !== id) return;
    this.renderCompliance(compliance);
  }

  renderCompliance(c) {
    const rows = ["visited", "late", "probable", "missed", "pending"].map((status) =>
      el(
        "tr",
        { dataset: { status } },
        el(
          "th",
          {},
          el("span", { class: `swatch status-${status}`, "aria-hidden": "true" }, STOP_GLYPH[status] || ""),
          t(`stop_status.${status}`),
        ),
        el("td", {}, String(c.counts?.[status] ?? 0)),
      ),
    );
    const alerts = ALERT_KINDS.filter((k) => c.alerts_by_kind?.[k]).map(
      (k) => `${t(`kind.${k}`)} ${c.alerts_by_kind[k]}`,
    );
    this.elements.summary.replaceChildren(
      el("table", { class: "compact", dataset: { testid: "compliance" } }, el("tbody", {}, ...rows)),
      el(
        "dl",
        { class: "figures" },
        el("dt", {}, t("routes.served_share")),
        el("dd", {}, percent(c.served_share)),
        el("dt", {}, t("routes.corridor_share")),
        el("dd", {}, `${percent(c.corridor_share)} (${km(c.distance_inside_m)} / ${km(c.distance_total_m)})`),
        el("dt", {}, t("routes.alerts")),
        el("dd", {}, alerts.join(", ") || t("routes.no_alerts")),
      ),
    );
  }

  relabel() {
    if (this.date !== null) this.fillTitle();
    this.renderOptions();
    if (this.selected) {
      this.fillHeader(this.selected.run, this.selected.detail);
      for (const entry of this.selected.stopMarkers.values()) entry.status = null;
      this.repaintStops();
      this.loadCompliance();
    }
  }
}
