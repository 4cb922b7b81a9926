// The alert panel: open and acknowledged alerts, newest first, applied by id from the
// snapshot, the live deltas and the answers to the dispatcher's own actions; a counter
// per kind in the header. Resolved alerts leave the panel.

import { whenText } from "./format.js";
import { t } from "./i18n.js";
import { el, perFrame } from "./ui.js";

export const ALERT_KINDS = [
  "wrong_route",
  "missed_stop",
  "offline",
  "speeding",
  "idle",
  "geofence_enter",
  "geofence_exit",
  "gps_jump",
];
const STATE_RANK = { open: 0, acknowledged: 1, resolved: 2 };
const REMEMBERED_RESOLVED = 10000;

/** The latest moment an alert's row changed, to tell a stale copy from a fresh one. */
function version(alert) {
  return Math.max(
    ...[alert.last_evidence_at, alert.acknowledged_at, alert.assigned_at, alert.resolved_at].map((time) =>
      time ? Date.parse(time) : 0,
    ),
  );
}

export class AlertPanel {
  /**
   * @param {object} options
   * @param {HTMLElement} options.list the <ol> of alert items
   * @param {HTMLElement} options.counters where the per-kind counters go (header)
   * @param {HTMLElement} options.empty shown when there is no alert
   * @param {HTMLElement} options.filterNote shows the kind filter and clears it
   * @param {object} options.directory names of vehicles, devices and staff
   * @param {object} options.actions acknowledge(id, note), assign(id, staffId), resolve(id, note)
   * @param {(alert: object) => void} options.onLocate
   * @param {(panel: AlertPanel) => void} options.onChange after each applied change
   * @param {(text: string) => void} options.announce for screen readers
   */
  constructor(options) {
    Object.assign(this, options);
    this.alerts = new Map(); // id -> alert (open or acknowledged)
    this.resolvedIds = new Set(); // so that a late copy does not bring one back
    this.items = new Map(); // id -> <li>
    this.kindFilter = null;
    this.schedule = perFrame(() => this.render());
    this.filterNote.querySelector("button").addEventListener("click", () => this.filterKind(null));
  }

  replaceAll(alerts) {
    this.alerts.clear();
    for (const alert of alerts) {
      if (alert.state !== "resolved") this.alerts.set(alert.id, alert);
    }
    this.changed();
  }

  apply(alert) {
    if (this.resolvedIds.has(alert.id)) return;
    const known = this.alerts.get(alert.id);
    if (known) {
      const newness = STATE_RANK[alert.state] - STATE_RANK[known.state] || version(alert) - version(known);
      if (newness < 0) return; // a copy from before what is shown (a snapshot racing a delta)
    }
    if (alert.state === "resolved") {
      this.alerts.delete(alert.id);
      this.resolvedIds.add(alert.id);
      if (this.resolvedIds.size > REMEMBERED_RESOLVED) {
        this.resolvedIds.delete(this.resolvedIds.values().next().value);
      }
    } else {
      if (!known && alert.state === "open" && alert.severity !== "info") {
        this.announce(`${t("alerts.new")}: ${t(`kind.${alert.kind}`)}, ${this.subject(alert)}`);
      }
      this.alerts.set(alert.id, alert);
    }
    this.changed();
  }

  changed() {
    this.schedule(); // the panel, the rings and the stops follow once per frame
  }

  get(id) {
    return this.alerts.get(id) || null;
  }

  /** Alert ids as listed, newest first (the kind filter aside). */
  ids() {
    return this.sorted().map((a) => a.id);
  }

  sorted() {
    return [...this.alerts.values()].sort(
      (a, b) => Date.parse(b.opened_at) - Date.parse(a.opened_at) || b.id - a.id,
    );
  }

  /** Unresolved alerts per device and per vehicle; "open" wins over "acknowledged". */
  rings() {
    const byDevice = new Map();
    const byVehicle = new Map();
    for (const alert of this.alerts.values()) {
      for (const [map, key] of [
        [byDevice, alert.device_id],
        [byVehicle, alert.vehicle_id],
      ]) {
        if (key === null || key === undefined) continue;
        if (map.get(key) !== "open") map.set(key, alert.state);
      }
    }
    return { byDevice, byVehicle };
  }

  forRoute(routeRunId) {
    return [...this.alerts.values()].filter((a) => a.route_run_id === routeRunId);
  }

  filterKind(kind) {
    this.kindFilter = this.kindFilter === kind ? null : kind;
    this.schedule();
  }

  subject(alert) {
    const vehicle = this.directory.vehicle(alert.vehicle_id);
    if (vehicle) return vehicle.code;
    const device = this.directory.device(alert.device_id);
    return device ? device.slug : "–";
  }

  // ------------------------------------------------------------ drawing

  render() {
    const sorted = this.sorted();
    this.renderCounters(sorted);
    const shown = this.kindFilter ? sorted.filter((a) => a.kind === this.kindFilter) : sorted;
    for (const [id, item] of this.items) {
      if (!this.alerts.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    const wanted = new Set(shown.map((a) => a.id));
    for (const [id, item] of this.items) {
      if (!wanted.has(id) && item.parentNode) item.remove();
    }
    let cursor = this.list.firstElementChild;
    for (const alert of shown) {
      let item = this.items.get(alert.id);
      if (!item) {
        item = this.createItem(alert);
        this.items.set(alert.id, item);
      }
      if (item.shownAlert !== alert) {
        this.fill(item, alert); // only what changed: an alert storm redraws few items
        item.shownAlert = alert;
      }
      if (item !== cursor) this.list.insertBefore(item, cursor);
      else cursor = cursor.nextElementSibling;
    }
    this.empty.hidden = shown.length > 0;
    this.filterNote.hidden = !this.kindFilter;
    if (this.kindFilter) {
      this.filterNote.querySelector("span").textContent = `${t("alerts.only_kind")}: ${t(
        `kind.${this.kindFilter}`,
      )}`;
    }
    this.onChange(this);
  }

  renderCounters(alerts) {
    const counts = new Map();
    for (const alert of alerts) {
      const count = counts.get(alert.kind) || { open: 0, acknowledged: 0 };
      count[alert.state] += 1;
      counts.set(alert.kind, count);
    }
    const buttons = [];
    for (const kind of ALERT_KINDS) {
      const count = counts.get(kind);
      if (!count) continue;
      const total = count.open + count.acknowledged;
      buttons.push(
        el(
          "button",
          {
            type: "button",
            class: `counter kind-${kind}${count.open ? " has-open" : ""}`,
            "aria-pressed": String(this.kindFilter === kind),
            title: t("alerts.counter_title", {
              kind: t(`kind.${kind}`),
              open: count.open,
              acknowledged: count.acknowledged,
            }),
            dataset: { kind, testid: "alert-counter" },
            onclick: () => this.filterKind(kind),
          },
          el("span", { class: "counter-label" }, t(`kind_short.${kind}`)),
          el("span", { class: "counter-count" }, String(total)),
        ),
      );
    }
    if (buttons.length === 0) {
      buttons.push(el("span", { class: "counter-none" }, t("alerts.none_short")));
    }
    this.counters.replaceChildren(...buttons);
  }

  createItem(alert) {
    const locate = el(
      "button",
      { type: "button", class: "alert-locate", onclick: () => this.onLocate(this.alerts.get(alert.id)) },
      el("span", { class: "severity-mark", "aria-hidden": "true" }),
      el("span", { class: "alert-kind" }),
      el("span", { class: "alert-subject" }),
      el("time", { class: "alert-time" }),
    );
    const action = (name, testid) =>
      el("button", {
        type: "button",
        class: `small ${name}`,
        dataset: { testid, action: name },
        onclick: () => this.openForm(alert.id, name),
      });
    return el(
      "li",
      { class: "alert-item", dataset: { testid: "alert-item", alertId: alert.id } },
      locate,
      el("p", { class: "alert-message" }),
      el("p", { class: "alert-status" }),
      el(
        "div",
        { class: "alert-actions" },
        action("acknowledge", "ack-button"),
        action("assign", "assign-button"),
        action("resolve", "resolve-button"),
      ),
      el("form", { class: "alert-form", hidden: true }),
    );
  }

  fill(item, alert) {
    item.className = `alert-item severity-${alert.severity} state-${alert.state}`;
    item.dataset.state = alert.state;
    item.dataset.kind = alert.kind;
    item.querySelector(".alert-kind").textContent = t(`kind.${alert.kind}`);
    item.querySelector(".alert-subject").textContent = this.subject(alert);
    const time = item.querySelector(".alert-time");
    time.textContent = whenText(alert.opened_at);
    time.dateTime = alert.opened_at;
    item.querySelector(".severity-mark").title = t(`severity.${alert.severity}`);
    item.querySelector(".alert-message").textContent = alert.message || "";
    item.querySelector(".alert-status").textContent = this.statusText(alert);
    for (const button of item.querySelectorAll(".alert-actions button")) {
      button.textContent = t(`alerts.${button.dataset.action}`);
    }
    item.querySelector(".acknowledge").hidden = alert.state !== "open";
    const label = [t(`kind.${alert.kind}`), this.subject(alert), whenText(alert.opened_at)].join(", ");
    item.querySelector(".alert-locate").setAttribute("aria-label", `${label}: ${t("alerts.locate")}`);
  }

  statusText(alert) {
    const parts = [t(`alert_state.${alert.state}`)];
    if (alert.state === "acknowledged" && alert.acknowledged_at) {
      const by = this.personName(alert.acknowledged_by);
      parts[0] += ` ${whenText(alert.acknowledged_at)}${by ? ` (${by})` : ""}`;
    }
    if (alert.acknowledge_note) parts.push(`“${alert.acknowledge_note}”`);
    if (alert.assigned_to !== null && alert.assigned_to !== undefined) {
      parts.push(
        `${t("alerts.assigned_to")}: ${this.personName(alert.assigned_to) || `#${alert.assigned_to}`}`,
      );
    }
    return parts.join(" · ");
  }

  personName(staffId) {
    if (staffId === null || staffId === undefined) return "";
    return this.directory.staff(staffId)?.full_name || "";
  }

  /** Repaint every item and counter in the current language. */
  relabel() {
    for (const item of this.items.values()) item.shownAlert = null;
    this.render();
  }

  // ------------------------------------------------------------ actions

  openForm(id, action) {
    const item = this.items.get(id);
    const alert = this.alerts.get(id);
    if (!item || !alert) return;
    const form = item.querySelector(".alert-form");
    if (!form.hidden && form.dataset.action === action) {
      form.hidden = true;
      return;
    }
    form.dataset.action = action;
    const field =
      action === "assign"
        ? this.staffSelect(alert)
        : el("input", {
            name: "note",
            type: "text",
            maxlength: 500,
            autocomplete: "off",
            placeholder: t(action === "resolve" ? "alerts.resolve_note_hint" : "alerts.note_hint"),
          });
    const error = el("p", { class: "form-error", role: "alert" });
    const confirm = el(
      "button",
      { type: "submit", class: "small primary", dataset: { testid: "action-confirm" } },
      t(`alerts.confirm_${action}`),
    );
    form.replaceChildren(
      el("label", {}, el("span", {}, t(action === "assign" ? "alerts.staff" : "alerts.note")), field),
      el(
        "div",
        { class: "form-buttons" },
        confirm,
        el(
          "button",
          { type: "button", class: "small", onclick: () => (form.hidden = true) },
          t("common.cancel"),
        ),
      ),
      error,
    );
    form.onsubmit = async (event) => {
      event.preventDefault();
      confirm.disabled = true;
      error.textContent = "";
      try {
        let changed;
        if (action === "assign") {
          const staffId = Number.parseInt(field.value, 10);
          if (Number.isNaN(staffId)) {
            error.textContent = t("alerts.choose_staff");
            return;
          }
          changed = await this.actions.assign(id, staffId);
        } else {
          const note = field.value.trim() || null;
          changed = await this.actions[action](id, note);
        }
        form.hidden = true;
        if (changed) this.apply(changed);
      } catch (failure) {
        error.textContent = `${t("error.action_failed")}: ${failure.reason || failure.message}`;
      } finally {
        confirm.disabled = false;
      }
    };
    form.hidden = false;
    field.focus();
  }

  staffSelect(alert) {
    const select = el("select", { name: "staff_id", required: true });
    select.append(el("option", { value: "" }, t("alerts.choose_staff")));
    for (const person of this.directory.staffList()) {
      select.append(
        el(
          "option",
          { value: person.id, selected: person.id === alert.assigned_to },
          `${person.full_name} (${person.code}${person.role ? `, ${person.role}` : ""})`,
        ),
      );
    }
    return select;
  }
}
