// Track replay: a vehicle's stored track over a time range, drawn as one SVG polyline
// (a DOM element, so it can be found and tested), and a marker that plays along it.

import { get, query } from "./api.js";
import { clockTime, speed } from "./format.js";
import { t } from "./i18n.js";

// Resolutions the server is asked for: the finest that keeps a track under MAX_POINTS.
const BUCKETS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
const MAX_POINTS = 2000;
const PLAY_SPEEDS = [10, 30, 60, 120, 300];

export function bucketFor(rangeS) {
  return BUCKETS_S.find((bucket) => rangeS / bucket <= MAX_POINTS) ?? BUCKETS_S.at(-1);
}

export class TrackReplay {
  /** @param {object} elements slider, play, speed, time, note */
  constructor(map, elements) {
    this.map = map;
    this.elements = elements;
    map.createPane("track").style.zIndex = 450;
    this.renderer = L.svg({ pane: "track" });
    this.layer = L.layerGroup().addTo(map);
    this.points = [];
    this.timesMs = [];
    this.playing = false;
    this.request = 0;
    for (const factor of PLAY_SPEEDS) {
      elements.speed.append(new Option(`×${factor}`, String(factor), factor === 60, factor === 60));
    }
    elements.slider.addEventListener("input", () => {
      this.pause();
      this.moveTo(Number(elements.slider.value));
    });
    elements.play.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    this.relabel();
  }

  /** Fetch and draw; resolves to the number of points drawn. */
  async draw(vehicleId, fromMs, toMs) {
    const request = ++this.request;
    const bucketS = bucketFor((toMs - fromMs) / 1000);
    const path = `/api/v1/vehicles/${vehicleId}/track?${query({
      from: new Date(fromMs).toISOString(),
      to: new Date(toMs).toISOString(),
      bucket_s: bucketS,
    })}`;
    const track = await get(path);
    if (request !== this.request) return this.points.length; // a newer request won
    this.clear();
    this.points = track.points || [];
    this.timesMs = this.points.map((p) => Date.parse(p.time));
    this.elements.note.textContent = this.points.length
      ? t("track.points", { n: this.points.length, bucket: track.bucket_s ?? bucketS })
      : t("track.empty");
    if (this.points.length === 0) return 0;
    const latlngs = this.points.map((p) => [p.lat, p.lon]);
    const line = L.polyline(latlngs, {
      renderer: this.renderer,
      color: "#6a3d9a",
      weight: 4,
      opacity: 0.9,
      lineJoin: "round",
      interactive: false,
    }).addTo(this.layer);
    line.getElement().dataset.testid = "track-line";
    line.getElement().setAttribute("data-point-count", String(this.points.length));
    const end = (at, label) =>
      L.circleMarker(at, {
        renderer: this.renderer,
        radius: 6,
        color: "#3f007d",
        weight: 2,
        fillColor: "#fff",
        fillOpacity: 1,
      })
        .bindTooltip(label)
        .addTo(this.layer);
    end(latlngs[0], `${t("track.start")} ${clockTime(this.points[0].time)}`);
    end(latlngs.at(-1), `${t("track.end")} ${clockTime(this.points.at(-1).time)}`);
    this.cursor = L.marker(latlngs[0], {
      icon: L.divIcon({
        className: "replay-marker",
        html: '<span class="vm-heading"><span class="vm-arrow"></span></span><span class="vm-body"></span>',
        iconSize: [22, 22],
        iconAnchor: [11, 11],
      }),
      pane: "markerPane",
      keyboard: false,
      interactive: false,
    }).addTo(this.layer);
    const spanS = Math.max(0, Math.round((this.timesMs.at(-1) - this.timesMs[0]) / 1000));
    this.elements.slider.max = String(spanS);
    this.elements.slider.value = "0";
    this.setControls(true);
    this.moveTo(0);
    this.map.fitBounds(line.getBounds(), { padding: [40, 40], maxZoom: 17 });
    return this.points.length;
  }

  clear() {
    this.pause();
    this.layer.clearLayers();
    this.points = [];
    this.timesMs = [];
    this.cursor = null;
    this.setControls(false);
    this.elements.time.textContent = "";
  }

  setControls(enabled) {
    this.elements.slider.disabled = !enabled;
    this.elements.play.disabled = !enabled;
  }

  /** Put the marker where the vehicle was ``offsetS`` after the first point. */
  moveTo(offsetS) {
    if (!this.cursor) return;
    const atMs = this.timesMs[0] + offsetS * 1000;
    let low = 0;
    let high = this.timesMs.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.timesMs[middle] <= atMs) low = middle;
      else high = middle - 1;
    }
    const a = this.points[low];
    const b = this.points[Math.min(low + 1, this.points.length - 1)];
    const spanMs = this.timesMs[Math.min(low + 1, this.points.length - 1)] - this.timesMs[low];
    const f = spanMs > 0 ? Math.min(1, (atMs - this.timesMs[low]) / spanMs) : 0;
    this.cursor.setLatLng([a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f]);
    const heading = this.cursor.getElement()?.querySelector(".vm-heading");
    if (heading && a.heading_deg != null) heading.style.transform = `rotate(${Math.round(a.heading_deg)}deg)`;
    this.elements.time.textContent = `${clockTime(atMs)} · ${speed(a.speed_kmh)}`;
  }

  play() {
    if (!this.cursor) return;
    const slider = this.elements.slider;
    // The slider counts whole seconds; playing keeps its own, finer offset.
    this.offsetS = Number(slider.value) >= Number(slider.max) ? 0 : Number(slider.value);
    this.playing = true;
    this.elements.play.textContent = t("track.pause");
    this.elements.play.setAttribute("aria-pressed", "true");
    let last = performance.now();
    const step = (now) => {
      if (!this.playing) return;
      const factor = Number(this.elements.speed.value) || 60;
      this.offsetS = Math.min(Number(slider.max), this.offsetS + ((now - last) / 1000) * factor);
      last = now;
      slider.value = String(Math.round(this.offsetS));
      this.moveTo(this.offsetS);
      if (this.offsetS >= Number(slider.max)) this.pause();
      else requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  pause() {
    this.playing = false;
    this.elements.play.textContent = t("track.play");
    this.elements.play.setAttribute("aria-pressed", "false");
  }

  relabel() {
    this.elements.play.textContent = t(this.playing ? "track.pause" : "track.play");
  }

  count() {
    return this.points.length;
  }
}
