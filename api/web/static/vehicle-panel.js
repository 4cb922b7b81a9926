// The vehicle panel: what the dispatcher clicked on (live facts), its track replay over
// a time range (default: the last two hours), and its day report.

import { get, query } from "./api.js";
import {
  clockTime,
  duration,
  km,
  localDate,
  number,
  serverNow,
  speed,
  wallInput,
  wallInputToMs,
  whenText,
} from "./format.js";
import { t } from "./i18n.js";
import { el } from "./ui.js";
import { TrackReplay } from "./track.js";

const DEFAULT_RANGE_MS = 2 * 3600 * 1000;

export class VehiclePanel {
  /**
   * @param {object} options
   * @param {L.Map} options.map
   * @param {HTMLElement} options.root the panel
   * @param {object} options.directory names of vehicles, devices and staff
   * @param {object} options.vehicles the VehicleLayer
   * @param {(deviceId: number, vehicleId: number|null) => object[]} options.alertsOf
   * @param {() => void} options.onClose
   */
  constructor({ map, root, directory, vehicles, alertsOf, onClose }) {
    this.map = map;
    this.root = root;
    this.directory = directory;
    this.vehicles = vehicles;
    this.alertsOf = alertsOf;
    this.deviceId = null;
    this.vehicleId = null;
    const $ = (selector) => root.querySelector(selector);
    this.title = $("#vehicle-title");
    this.facts = $("#vehicle-facts");
    this.from = $("#track-from");
    this.to = $("#track-to");
    this.drawButton = $("#track-draw");
    this.note = $("#track-note");
    this.dayDate = $("#day-date");
    this.dayReport = $("#day-report");
    this.replay = new TrackReplay(map, {
      slider: $("#track-slider"),
      play: $("#track-play"),
      speed: $("#track-speed"),
      time: $("#track-time"),
      note: this.note,
    });
    $("#vehicle-close").addEventListener("click", () => {
      this.hide();
      onClose();
    });
    $("#track-clear").addEventListener("click", () => {
      this.replay.clear();
      this.note.textContent = "";
    });
    this.drawButton.addEventListener("click", () => this.drawTrack());
    $("#day-load").addEventListener("click", () => this.loadDayReport());
  }

  show(deviceId) {
    const record = this.vehicles.record(deviceId);
    if (!record) return;
    const vehicleId = record.position.vehicle_id ?? null;
    if (vehicleId !== this.vehicleId || this.vehicleId === null) {
      this.replay.clear();
      this.note.textContent = "";
      this.resetRange();
      this.dayDate.value = localDate(serverNow());
      this.dayReport.replaceChildren();
    }
    this.deviceId = deviceId;
    this.vehicleId = vehicleId;
    this.root.hidden = false;
    this.fill(record);
    this.drawButton.disabled = vehicleId === null;
    if (vehicleId === null) this.note.textContent = t("track.no_vehicle");
    else if (!this.dayReport.firstChild) this.loadDayReport();
  }

  hide() {
    this.root.hidden = true;
    this.replay.clear();
    this.deviceId = null;
    this.vehicleId = null;
  }

  resetRange() {
    const now = serverNow();
    this.from.value = wallInput(now - DEFAULT_RANGE_MS);
    this.to.value = wallInput(now + 60000); // the minute under way included
  }

  /** The device's position or state changed: refresh the facts if it is the one shown. */
  onRecordChange(record) {
    if (!this.root.hidden && record.position.device_id === this.deviceId) this.fill(record);
  }

  fill(record) {
    const { position } = record;
    const vehicle = this.directory.vehicle(position.vehicle_id);
    const staff = this.directory.staff(position.staff_id);
    const kind = record.kind === "phone" ? t("vehicle.phone") : t("vehicle.truck");
    const who = record.kind === "phone" ? staff?.full_name : vehicle?.code;
    this.title.textContent = `${kind} ${who || position.device}`;
    const alerts = this.alertsOf(position.device_id, position.vehicle_id);
    const facts = [
      ["vehicle.code", vehicle?.code],
      ["vehicle.name", vehicle?.name],
      ["vehicle.device", `${position.device} (${kind})`],
      ["vehicle.staff", staff ? `${staff.full_name} · ${staff.phone || staff.code}` : null],
      ["vehicle.state", t(`state.${record.state || "stopped"}`)],
      ["vehicle.speed", speed(position.speed_kmh)],
      ["vehicle.heading", position.heading_deg == null ? null : `${Math.round(position.heading_deg)}°`],
      ["vehicle.last_fix", whenText(position.time_ms)],
      ["vehicle.position", `${position.lat.toFixed(5)}, ${position.lon.toFixed(5)}`],
      ["vehicle.capacity", vehicle?.capacity_kg ? `${number(vehicle.capacity_kg)} kg` : null],
      [
        "vehicle.open_alerts",
        alerts.length ? alerts.map((a) => t(`kind.${a.kind}`)).join(", ") : t("vehicle.no_alerts"),
      ],
    ];
    this.facts.replaceChildren(
      ...facts
        .filter(([, value]) => value)
        .flatMap(([key, value]) => [el("dt", {}, t(key)), el("dd", {}, value)]),
    );
  }

  async drawTrack() {
    if (this.vehicleId === null) return;
    const fromMs = wallInputToMs(this.from.value);
    const toMs = wallInputToMs(this.to.value);
    if (Number.isNaN(fromMs) || Number.isNaN(toMs) || fromMs >= toMs) {
      this.note.textContent = t("track.bad_range");
      return;
    }
    this.drawButton.disabled = true;
    this.note.textContent = t("common.loading");
    try {
      await this.replay.draw(this.vehicleId, fromMs, toMs);
    } catch (failure) {
      this.note.textContent = `${t("error.load_failed")}: ${failure.reason || failure.message}`;
    } finally {
      this.drawButton.disabled = false;
    }
  }

  async loadDayReport() {
    if (this.vehicleId === null || !this.dayDate.value) return;
    const vehicleId = this.vehicleId;
    this.dayReport.replaceChildren(el("p", { class: "note" }, t("common.loading")));
    let report;
    try {
      report = await get(`/api/v1/vehicles/${vehicleId}/day-report?${query({ date: this.dayDate.value })}`);
    } catch (failure) {
      this.dayReport.replaceChildren(
        el("p", { class: "form-error" }, `${t("error.load_failed")}: ${failure.reason || failure.message}`),
      );
      return;
    }
    if (vehicleId !== this.vehicleId) return;
    this.renderDayReport(report);
  }

  renderDayReport(report) {
    const s = report.summary || {};
    const trips = report.trips || [];
    const stops = report.stops || [];
    const row = (key, value) => el("tr", {}, el("th", { scope: "row" }, t(key)), el("td", {}, value));
    const summary = el(
      "table",
      { class: "compact" },
      el(
        "tbody",
        {},
        row("day.distance", km(s.distance_m)),
        row("day.driving", duration(s.driving_s)),
        row("day.stopped", duration(s.stopped_s)),
        row("day.max_speed", speed(s.max_speed_kmh)),
        row("day.avg_speed", speed(s.avg_moving_speed_kmh)),
        row("day.trips", String(trips.length)),
        row("day.stops", String(stops.length)),
        row("day.fixes", number(s.fix_count)),
        row("day.first_last", s.first_fix ? `${clockTime(s.first_fix)} – ${clockTime(s.last_fix)}` : "–"),
      ),
    );
    const head = (...keys) =>
      el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", { scope: "col" }, t(k)))));
    const tripTable = el(
      "table",
      { class: "compact list" },
      head("day.time", "day.distance", "day.duration", "day.max_speed"),
      el(
        "tbody",
        {},
        ...trips.map((trip) =>
          el(
            "tr",
            {},
            el("td", {}, `${clockTime(trip.start)}–${clockTime(trip.end)}`),
            el("td", {}, km(trip.distance_m)),
            el("td", {}, duration(trip.duration_s)),
            el("td", {}, speed(trip.max_speed_kmh)),
          ),
        ),
      ),
    );
    const stopTable = el(
      "table",
      { class: "compact list" },
      head("day.time", "day.duration"),
      el(
        "tbody",
        {},
        ...stops.map((stop) =>
          el(
            "tr",
            {
              class: "clickable",
              tabindex: 0,
              title: t("day.show_on_map"),
              onclick: () => this.map.setView([stop.lat, stop.lon], Math.max(this.map.getZoom(), 17)),
              onkeydown: (e) =>
                e.key === "Enter" && this.map.setView([stop.lat, stop.lon], Math.max(this.map.getZoom(), 17)),
            },
            el("td", {}, `${clockTime(stop.start)}–${clockTime(stop.end)}`),
            el("td", {}, duration(stop.duration_s)),
          ),
        ),
      ),
    );
    const parts = [summary];
    if (trips.length)
      parts.push(el("details", {}, el("summary", {}, t("day.trips_list", { n: trips.length })), tripTable));
    if (stops.length)
      parts.push(el("details", {}, el("summary", {}, t("day.stops_list", { n: stops.length })), stopTable));
    this.dayReport.replaceChildren(...parts);
  }

  relabel() {
    this.replay.relabel();
    const record = this.deviceId === null ? null : this.vehicles.record(this.deviceId);
    if (record && !this.root.hidden) this.fill(record);
    if (this.dayReport.querySelector("table")) this.loadDayReport();
  }
}
