// Vehicles and phones on the map, live. One marker per device, created once and then
// moved in place; fixes are coalesced per device and applied once per animation frame,
// so a thousand devices reporting every second cost one batch of DOM writes per frame.
//
// A marker shows kind by shape (truck: rounded square, phone: small circle), heading by
// an arrow, state by colour and symbol (moving: green with arrow, stopped: amber with a
// square, offline: grey and dashed), and an unresolved alert by a red ring.

import { clockTime, serverNow, speed } from "./format.js";
import { t } from "./i18n.js";
import { el, perFrame } from "./ui.js";

const MOVING_FROM_KMH = 3;
const HEADING_STEP_DEG = 2; // smaller turns are not redrawn
const FULL_SIZE_FROM_ZOOM = 14; // below, markers shrink so that a fleet stays readable

export class VehicleLayer {
  /**
   * @param {L.Map} map
   * @param {object} options
   * @param {object} options.directory names of vehicles, devices and staff
   * @param {(deviceId: number) => void} options.onSelect
   * @param {(record: object) => void} options.onChange a device's position or state changed
   */
  constructor(map, { directory, onSelect, onChange }) {
    this.map = map;
    this.directory = directory;
    this.onSelect = onSelect;
    this.onChange = onChange;
    this.offlineAfterMs = 180000;
    this.records = new Map(); // device id -> record
    this.pending = new Map(); // device id -> newest position not yet drawn
    this.alertRings = new Map(); // device id -> "open" | "acknowledged"
    this.vehicleRings = new Map(); // vehicle id -> "open" | "acknowledged"
    this.selected = null;
    this.replacing = null; // device ids of a snapshot, to drop the others
    this.group = L.layerGroup().addTo(map);
    this.schedule = perFrame(() => this.flush());
    const resize = () =>
      map.getContainer().classList.toggle("vehicles-far", map.getZoom() < FULL_SIZE_FROM_ZOOM);
    map.on("zoomend", resize);
    resize();
  }

  setOfflineAfter(seconds) {
    if (seconds > 0) this.offlineAfterMs = seconds * 1000;
  }

  /**
   * A fix from the feed or from /positions/latest; drawn in the next frame. A compact
   * row of the feed carries only what moves: the device's slug, kind and person are kept
   * from what was known of it (the snapshot, or the directory).
   */
  push(update) {
    const deviceId = update.device_id;
    const known = this.pending.get(deviceId) || this.records.get(deviceId)?.position;
    const timeMs = update.t_ms ?? Date.parse(update.time);
    // Fixes may arrive out of order (a snapshot racing a delta): the newest one wins.
    if (known && known.time_ms > timeMs) return;
    this.pending.set(deviceId, this.completed({ ...known, ...update, time_ms: timeMs }));
    this.schedule();
  }

  completed(position) {
    const device = this.directory.device(position.device_id);
    position.kind = position.kind || device?.kind || "truck";
    position.device = position.device || device?.slug || `#${position.device_id}`;
    if (position.staff_id === undefined) position.staff_id = device?.staff_id ?? null;
    if (position.vehicle_id === undefined) position.vehicle_id = device?.vehicle_id ?? null;
    return position;
  }

  /** The positions of a snapshot replace what is shown: devices not in it disappear. */
  replaceAll(positions) {
    this.pending.clear();
    this.replacing = new Set(positions.map((p) => p.device_id));
    for (const position of positions) {
      const timeMs = position.t_ms ?? Date.parse(position.time);
      this.pending.set(position.device_id, this.completed({ ...position, time_ms: timeMs }));
    }
    this.schedule();
  }

  /** Which devices and vehicles have unresolved alerts ("open" beats "acknowledged"). */
  setAlertRings(byDevice, byVehicle) {
    this.alertRings = byDevice;
    this.vehicleRings = byVehicle;
    for (const record of this.records.values()) this.paint(record);
  }

  flush() {
    if (this.replacing) {
      for (const [deviceId, record] of this.records) {
        if (!this.replacing.has(deviceId)) {
          this.group.removeLayer(record.marker);
          this.records.delete(deviceId);
        }
      }
      this.replacing = null;
    }
    for (const position of this.pending.values()) {
      let record = this.records.get(position.device_id);
      if (!record) {
        record = this.create(position);
      } else {
        record.position = position;
        record.marker.setLatLng([position.lat, position.lon]);
      }
      this.paint(record);
      if (record.marker.isTooltipOpen()) record.marker.getTooltip().update();
      this.onChange(record);
    }
    this.pending.clear();
  }

  create(position) {
    const kind = position.kind === "phone" ? "phone" : "truck";
    const size = kind === "phone" ? 22 : 30;
    const icon = L.divIcon({
      className: `vehicle-marker kind-${kind}`,
      html:
        '<span class="vm-ring"></span><span class="vm-heading"><span class="vm-arrow"></span></span>' +
        '<span class="vm-body"><span class="vm-symbol"></span></span>',
      iconSize: [size, size],
      iconAnchor: [size / 2, size / 2],
    });
    const marker = L.marker([position.lat, position.lon], {
      icon,
      // A thousand tab stops would bury the page; the vehicle search reaches any of them.
      keyboard: false,
      riseOnHover: true,
    });
    const record = { position, marker, kind, state: null, ring: null, headingDeg: null, element: null };
    marker.bindTooltip(() => this.tooltip(record), {
      direction: "top",
      offset: [0, -size / 2],
      className: "vehicle-tooltip",
    });
    marker.on("click", () => this.onSelect(position.device_id));
    // The element is made again when the marker re-enters the map: label it each time.
    marker.on("add", () => this.label(record));
    this.records.set(position.device_id, record);
    marker.addTo(this.group);
    return record;
  }

  label(record) {
    const element = record.marker.getElement();
    record.element = element;
    record.state = null;
    record.ring = null;
    record.headingDeg = undefined; // unknown: the next paint writes it either way
    record.headingElement = element.querySelector(".vm-heading");
    element.dataset.testid = "vehicle-marker";
    element.dataset.deviceId = record.position.device_id;
    if (record.position.vehicle_id !== null && record.position.vehicle_id !== undefined) {
      element.dataset.vehicleId = record.position.vehicle_id;
    }
    element.setAttribute("aria-label", this.title(record));
    element.classList.toggle("selected", this.selected === record.position.device_id);
  }

  /** Write state, ring and heading to the marker's element where they changed. */
  paint(record) {
    const element = record.element;
    if (!element) return;
    const state = this.stateOf(record.position);
    if (state !== record.state) {
      element.classList.remove(`state-${record.state}`);
      element.classList.add(`state-${state}`);
      element.dataset.state = state;
      record.state = state;
    }
    const ring =
      this.alertRings.get(record.position.device_id) ||
      this.vehicleRings.get(record.position.vehicle_id) ||
      null;
    if (ring !== record.ring) {
      element.classList.toggle("alert-open", ring === "open");
      element.classList.toggle("alert-acknowledged", ring === "acknowledged");
      record.ring = ring;
    }
    const heading = record.position.heading_deg;
    if (heading === null || heading === undefined) {
      if (record.headingDeg !== null) element.classList.add("no-heading");
      record.headingDeg = null;
    } else if (record.headingDeg == null || angleBetween(heading, record.headingDeg) >= HEADING_STEP_DEG) {
      element.classList.remove("no-heading");
      record.headingElement.style.transform = `rotate(${Math.round(heading)}deg)`;
      record.headingDeg = heading;
    }
  }

  stateOf(position) {
    if (serverNow() - position.time_ms > this.offlineAfterMs) return "offline";
    return (position.speed_kmh ?? 0) >= MOVING_FROM_KMH ? "moving" : "stopped";
  }

  /** Re-evaluate offline on a clock (a silent device sends nothing that would). */
  tick() {
    for (const record of this.records.values()) {
      const before = record.state;
      this.paint(record);
      if (record.state !== before) this.onChange(record);
    }
  }

  title(record) {
    const { position } = record;
    if (record.kind === "phone") {
      const staff = this.directory.staff(position.staff_id);
      return `${t("vehicle.phone")} ${staff ? staff.full_name : position.device}`;
    }
    const vehicle = this.directory.vehicle(position.vehicle_id);
    return `${t("vehicle.truck")} ${vehicle ? vehicle.code : position.device}`;
  }

  tooltip(record) {
    const { position } = record;
    const vehicle = this.directory.vehicle(position.vehicle_id);
    const staff = this.directory.staff(position.staff_id);
    const heading =
      record.kind === "phone" ? staff?.full_name || position.device : vehicle?.code || position.device;
    const name = record.kind === "phone" ? vehicle?.code || position.device : vehicle?.name || "";
    return el(
      "div",
      {},
      el("strong", {}, heading),
      name ? el("div", {}, name) : null,
      el("div", {}, `${t(`state.${this.stateOf(position)}`)} · ${speed(position.speed_kmh)}`),
      el("div", {}, `${t("vehicle.last_fix")}: ${clockTime(position.time_ms)}`),
    );
  }

  select(deviceId) {
    const previous = this.records.get(this.selected);
    previous?.element?.classList.remove("selected");
    this.selected = deviceId;
    this.records.get(deviceId)?.element?.classList.add("selected");
  }

  /** [lat, lon] of the device's marker as drawn, or null. */
  markerPosition(deviceId) {
    const record = this.records.get(Number(deviceId));
    if (!record) return null;
    const at = record.marker.getLatLng();
    return [at.lat, at.lng];
  }

  record(deviceId) {
    return this.records.get(deviceId) || null;
  }

  /** Devices of a vehicle (a truck unit, and phones riding in it). */
  devicesOfVehicle(vehicleId) {
    return [...this.records.values()].filter((r) => r.position.vehicle_id === vehicleId);
  }

  /** Repaint after the language changed: the labels are text. */
  relabel() {
    for (const record of this.records.values()) {
      record.element?.setAttribute("aria-label", this.title(record));
    }
  }
}

function angleBetween(a, b) {
  const d = Math.abs(a - b) % 360;
  return d > 180 ? 360 - d : d;
}
