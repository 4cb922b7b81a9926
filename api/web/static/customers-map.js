// The customer map: the service points in view, filtered like the table, asked again
// after every move and zoom. Zoomed out, the server answers with clusters (a count at the
// centre of each); zoomed in, with the points, coloured by status and drawn with a shape
// per status too (full ring, dashed, dotted), hollow or filled by collected today.

import { book } from "./customers-api.js";
import { localDate, whenText } from "./format.js";
import { t, tOr } from "./i18n.js";
import { debounce, el, toast } from "./ui.js";

const MOVE_PAUSE_MS = 200;

export class CustomerMap {
  /**
   * @param {L.Map} map
   * @param {object} options
   * @param {import("./customers-search.js").Filters} options.filters
   * @param {HTMLInputElement} options.collected the "collected today" switch
   * @param {HTMLElement} options.note where the map says what it shows
   * @param {(pointId: number) => void} options.onSelect
   */
  constructor(map, { filters, collected, note, onSelect }) {
    this.map = map;
    this.filters = filters;
    this.collected = collected;
    this.note = note;
    this.onSelect = onSelect;
    map.createPane("customers").style.zIndex = 450;
    this.renderer = L.svg({ padding: 0.2, pane: "customers" });
    this.layer = L.layerGroup().addTo(map);
    this.pending = null;
    this.selected = null;
    this.markers = new Map(); // point id -> circle marker
    this.last = { clusters: 0, points: 0, zoom: null, refreshed: 0 };
    const moved = debounce(() => this.refresh(), MOVE_PAUSE_MS);
    map.on("moveend", moved);
    collected.addEventListener("change", () => this.refresh());
  }

  async refresh() {
    this.pending?.abort();
    const controller = new AbortController();
    this.pending = controller;
    const bounds = this.map.getBounds();
    const clamp = (value, limit) => Math.max(-limit, Math.min(limit, value));
    const zoom = Math.max(0, Math.min(22, Math.round(this.map.getZoom())));
    const params = {
      south: clamp(bounds.getSouth(), 90),
      west: clamp(bounds.getWest(), 180),
      north: clamp(bounds.getNorth(), 90),
      east: clamp(bounds.getEast(), 180),
      zoom,
      ...this.filters.params(),
      collected_on: this.collected.checked ? localDate() : null,
    };
    try {
      const view = await book.map(params, controller.signal);
      if (controller.signal.aborted) return;
      this.draw(view, zoom);
    } catch (failure) {
      if (failure.name === "AbortError") return;
      toast(`${t("cust.map_failed")}: ${failure.reason || failure.message}`, "error");
    }
  }

  draw(view, zoom) {
    this.layer.clearLayers();
    this.markers.clear();
    for (const cluster of view.clusters) {
      const count = Number(cluster.count); // a number into the icon's HTML, never text
      const size = Math.round(30 + 8 * Math.log10(Math.max(1, count)));
      const icon = L.divIcon({
        className: "cust-cluster-icon",
        html: `<span class="cust-cluster" data-testid="cluster-marker" data-count="${count}">${count}</span>`,
        iconSize: [size, size],
      });
      const title = t("cust.cluster_title", { n: count });
      L.marker([cluster.lat, cluster.lon], { icon, pane: "customers", keyboard: true, title })
        .on("click", () => this.map.setView([cluster.lat, cluster.lon], Math.min(19, this.map.getZoom() + 2)))
        .addTo(this.layer);
    }
    for (const point of view.points) {
      const marker = L.circleMarker([point.lat, point.lon], {
        renderer: this.renderer,
        pane: "customers",
        radius: 7,
        weight: 3,
        className: pointClasses(point, point.id === this.selected),
      });
      marker.bindTooltip(() => pointTooltip(point), { direction: "top", opacity: 0.95 });
      marker.on("click", () => this.onSelect(point.id));
      marker.addTo(this.layer);
      marker.getElement()?.setAttribute("data-point-id", String(point.id));
      this.markers.set(point.id, { marker, point });
    }
    this.last = {
      clusters: view.clusters.length,
      points: view.points.length,
      zoom,
      refreshed: this.last.refreshed + 1,
    };
    const total = view.clusters.reduce((sum, c) => sum + c.count, 0);
    this.note.textContent = view.clusters.length
      ? t("cust.map_clusters", { n: total }) +
        (view.clusters_as_of ? ` (${t("cust.map_counted_at", { when: whenText(view.clusters_as_of) })})` : "")
      : t("cust.map_points", { n: view.points.length });
  }

  /** Ring the point on the map (when it is drawn) and keep it ringed across refreshes. */
  select(pointId, pan = false) {
    this.selected = pointId;
    for (const { marker, point } of this.markers.values()) {
      marker.getElement()?.setAttribute("class", `leaflet-interactive ${pointClasses(point, point.id === pointId)}`);
    }
    if (pan && this.markers.has(pointId)) this.map.panTo(this.markers.get(pointId).marker.getLatLng());
  }

  /** Centre the map on a point (from the detail panel), near enough to draw points. */
  showAt(lat, lon) {
    this.map.setView([lat, lon], Math.max(this.map.getZoom(), 17));
  }

  relabel() {
    this.refresh();
  }
}

function pointClasses(point, selected) {
  const classes = ["cust-point", `status-${point.status}`];
  if (point.needs_fix) classes.push("needs-fix");
  if (point.collected === true) classes.push("collected");
  if (point.collected === false) classes.push("not-collected");
  if (selected) classes.push("selected");
  return classes.join(" ");
}

function pointTooltip(point) {
  const status = tOr(`cust.status_${point.status}`, point.status);
  const lines = [el("strong", {}, point.name), el("br"), `${point.code} · ${status}`];
  if (point.needs_fix) lines.push(el("br"), t("cust.needs_fix"));
  if (point.collected === true) lines.push(el("br"), t("cust.collected_yes"));
  if (point.collected === false) lines.push(el("br"), t("cust.collected_no"));
  return el("span", {}, ...lines);
}

/** The legend under the map: what each colour and shape means. */
export function renderLegend(box) {
  const swatch = (classes, label) =>
    el("span", { class: "legend-item" }, el("span", { class: `legend-dot ${classes}` }), label);
  box.replaceChildren(
    swatch("status-active", t("cust.status_active")),
    swatch("status-suspended", t("cust.status_suspended")),
    swatch("status-terminated", t("cust.status_terminated")),
    swatch("status-active collected", t("cust.collected_yes")),
    swatch("status-active needs-fix", t("cust.needs_fix")),
    el("span", { class: "legend-item" }, el("span", { class: "legend-cluster" }, "12"), t("cust.legend_cluster")),
  );
}
