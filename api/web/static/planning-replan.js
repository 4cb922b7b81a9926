// Re-planning today after a blocked road, a breakdown or a new request: one form per reason,
// opened by its button. A blocked road is picked on the map: the next click places it, Esc
// gives up, and the circle drawn there follows the radius typed.

import { t } from "./i18n.js";
import { el } from "./ui.js";

const BLOCK_RADIUS_M = 30;
const BLOCK_COLOUR = "#b2182b";

function field(key, input) {
  return el("label", {}, el("span", {}, t(key)), input);
}

export class ReplanForm {
  /**
   * @param {object} options
   * @param {L.Map} options.map
   * @param {HTMLElement} options.root the re-plan box: a button per reason and the form
   * @param {object} options.directory names of vehicles
   * @param {() => object[]} options.runsOfDay the route panel's runs of the date
   * @param {(body: object) => Promise<boolean>} options.send sends the re-plan; true once stored
   */
  constructor({ map, root, directory, runsOfDay, send }) {
    Object.assign(this, { map, directory, runsOfDay, send });
    this.buttons = [...root.querySelectorAll("[data-reason]")];
    this.form = root.querySelector("#replan-form");
    this.reason = null;
    this.blockAt = null;
    this.picking = false;
    this.busy = false;
    this.blockLayer = L.layerGroup().addTo(map);
    this.hint = el("div", { class: "map-hint", role: "status", hidden: true });
    this.hint.dataset.testid = "map-hint";
    map.getContainer().append(this.hint);
    this.wire();
  }

  wire() {
    for (const button of this.buttons) {
      button.addEventListener("click", () => this.open(button.dataset.reason));
    }
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.map.on("click", (event) => this.picked(event.latlng));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.picking) this.stopPicking(true);
    });
  }

  /** While the server plans nothing else is sent. */
  setBusy(busy) {
    this.busy = busy;
    for (const button of this.buttons) button.disabled = busy;
    for (const button of this.form.querySelectorAll("button[type=submit]")) button.disabled = busy;
  }

  open(reason) {
    const again = this.reason === reason;
    this.close();
    if (again) return; // the same button again closes its form
    this.reason = reason;
    for (const button of this.buttons) {
      button.setAttribute("aria-expanded", String(button.dataset.reason === reason));
    }
    this.fillForm({});
    this.form.hidden = false;
    if (reason === "road_blocked") this.startPicking();
    else this.form.querySelector("input, select")?.focus();
  }

  close() {
    this.stopPicking(false);
    this.reason = null;
    this.blockAt = null;
    this.blockLayer.clearLayers();
    this.form.hidden = true;
    this.form.replaceChildren();
    for (const button of this.buttons) button.setAttribute("aria-expanded", "false");
  }

  /** The form of the open re-plan, with ``values`` kept from before (a language change). */
  fillForm(values) {
    const reason = this.reason;
    const fields = [];
    if (reason === "road_blocked") {
      fields.push(
        el("p", { class: "note block-where", dataset: { testid: "block-where" } }),
        el(
          "button",
          { type: "button", class: "small", onclick: () => this.startPicking() },
          t("plan.block_pick_again"),
        ),
        field(
          "plan.block_radius",
          el("input", {
            name: "radius_m",
            type: "number",
            min: 1,
            max: 2000,
            step: 1,
            value: values.radius_m ?? BLOCK_RADIUS_M,
            dataset: { testid: "block-radius" },
            oninput: () => this.drawBlock(),
          }),
        ),
        field(
          "plan.block_note",
          el("input", {
            name: "note",
            type: "text",
            maxlength: 500,
            autocomplete: "off",
            placeholder: t("plan.block_note_hint"),
            value: values.note ?? "",
            dataset: { testid: "block-note" },
          }),
        ),
      );
    } else if (reason === "breakdown") {
      fields.push(field("plan.breakdown_vehicle", this.vehicleSelect(values.vehicle_id)));
    } else {
      fields.push(
        field(
          "plan.request_point",
          el("input", {
            name: "service_point_id",
            type: "number",
            min: 1,
            step: 1,
            value: values.service_point_id ?? "",
            dataset: { testid: "request-point" },
          }),
        ),
      );
    }
    this.form.replaceChildren(
      el("p", { class: "plan-form-title" }, t(`plan.replan_${reason}_help`)),
      ...fields,
      el(
        "div",
        { class: "form-buttons" },
        el(
          "button",
          { type: "submit", class: "small primary", dataset: { testid: "replan-send" } },
          t("plan.replan_send"),
        ),
        el("button", { type: "button", class: "small", onclick: () => this.close() }, t("common.cancel")),
      ),
      el("p", { class: "form-error", role: "alert", dataset: { testid: "replan-error" } }),
    );
    this.showBlockWhere();
    this.setBusy(this.busy); // the new send button too
  }

  /** Today's vehicles on a run (the route panel's list), else every vehicle. */
  vehicleSelect(chosen) {
    const seen = new Map();
    for (const run of this.runsOfDay()) {
      if (run.vehicle_id == null || !["planned", "active"].includes(run.status)) continue;
      if (seen.has(run.vehicle_id)) continue;
      seen.set(run.vehicle_id, `${run.vehicle_code || run.vehicle_id} · ${run.name}`);
    }
    if (seen.size === 0) {
      for (const vehicle of this.directory.vehicles.values()) {
        seen.set(vehicle.id, [vehicle.code, vehicle.name].filter(Boolean).join(" · "));
      }
    }
    return el(
      "select",
      { name: "vehicle_id", dataset: { testid: "breakdown-vehicle" } },
      el("option", { value: "" }, t("plan.choose_vehicle")),
      [...seen].map(([id, text]) => el("option", { value: id, selected: String(id) === String(chosen) }, text)),
    );
  }

  formValues() {
    return Object.fromEntries(new FormData(this.form));
  }

  async submit() {
    const error = this.form.querySelector(".form-error");
    error.textContent = "";
    const body = this.requestBody(this.reason, this.formValues());
    if (typeof body === "string") {
      error.textContent = t(body);
      return;
    }
    this.stopPicking(false);
    if (await this.send(body)) this.close();
  }

  /** The re-plan's request body, or the key of what is missing from the form. */
  requestBody(reason, values) {
    if (reason === "road_blocked") {
      const radius = Number.parseFloat(values.radius_m);
      if (!this.blockAt) return "plan.block_pick_first";
      if (!(radius > 0 && radius <= 2000)) return "plan.block_radius_bad";
      const { lat, lng } = this.blockAt;
      return { reason, block: { lat, lon: lng, radius_m: radius, note: values.note.trim() } };
    }
    if (reason === "breakdown") {
      const id = Number.parseInt(values.vehicle_id, 10);
      return Number.isNaN(id) ? "plan.choose_vehicle" : { reason, vehicle_id: id };
    }
    const id = Number.parseInt(values.service_point_id, 10);
    return id > 0 ? { reason, service_point_id: id } : "plan.request_point_bad";
  }

  // ------------------------------------------------------------ where the road is blocked

  startPicking() {
    this.picking = true;
    this.hint.textContent = t("plan.block_hint");
    this.hint.hidden = false;
    this.map.getContainer().classList.add("map-picking");
    this.showBlockWhere();
  }

  /** Leave the map's click mode; ``cancelled`` (Esc) drops a form with no place yet. */
  stopPicking(cancelled) {
    if (!this.picking) return;
    this.picking = false;
    this.hint.hidden = true;
    this.map.getContainer().classList.remove("map-picking");
    if (cancelled && !this.blockAt) this.close();
    else this.showBlockWhere();
  }

  picked(latlng) {
    if (!this.picking) return;
    this.blockAt = latlng;
    this.stopPicking(false);
    this.drawBlock();
    this.form.querySelector("[name=radius_m]")?.focus();
  }

  drawBlock() {
    this.blockLayer.clearLayers();
    if (!this.blockAt) return;
    const radiusField = this.form.querySelector("[name=radius_m]");
    const radius = Number.parseFloat(radiusField?.value) || BLOCK_RADIUS_M;
    const ring = { radius, color: BLOCK_COLOUR, weight: 2, dashArray: "6 4", fillOpacity: 0.15 };
    L.circle(this.blockAt, { ...ring, className: "road-block" }).addTo(this.blockLayer);
    const centre = { radius: 4, color: BLOCK_COLOUR, fillOpacity: 1, interactive: false };
    L.circleMarker(this.blockAt, centre).addTo(this.blockLayer);
  }

  showBlockWhere() {
    const where = this.form.querySelector(".block-where");
    if (!where) return;
    if (this.picking) where.textContent = t("plan.block_hint");
    else if (this.blockAt) {
      where.textContent = t("plan.block_at", {
        at: `${this.blockAt.lat.toFixed(5)}, ${this.blockAt.lng.toFixed(5)}`,
      });
    } else where.textContent = t("plan.block_pick_first");
  }

  relabel() {
    if (this.reason) this.fillForm(this.formValues());
    if (this.picking) this.hint.textContent = t("plan.block_hint");
  }
}
