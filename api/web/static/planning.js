// Route planning for the route panel's date: plan the day within a time limit the
// dispatcher picks, read the date's plans back with their routes drawn on the map, re-plan
// today after a blocked road, a breakdown or a new request, and everyone's task list.
// Dispatchers and admins plan; accountants read.

import { get, post, put, query } from "./api.js";
import { clockMinutes, whenText } from "./format.js";
import { t, tOr } from "./i18n.js";
import { ReplanForm } from "./planning-replan.js";
import { planSummary, routeColour } from "./planning-summary.js";
import { TaskList } from "./planning-tasks.js";
import { dateText } from "./routes.js";
import { el, toast } from "./ui.js";

const TIME_LIMITS_S = [2, 10, 30, 60];
const DEFAULT_TIME_LIMIT_S = 30;
const DETAIL_FETCHES_AT_ONCE = 3;
const LINE_CLASS = "plan-route-line";

export class PlanningPanel {
  /**
   * @param {object} options
   * @param {L.Map} options.map
   * @param {HTMLElement} options.root the panel
   * @param {HTMLElement} options.toggle the button beside the routes that opens and closes it
   * @param {boolean} options.canPlan the signed-in role plans and re-plans (dispatcher, admin)
   * @param {object} options.directory names of vehicles
   * @param {() => object[]} options.runsOfDay the route panel's runs of the date
   * @param {() => Promise<void>} options.onPlanned a plan was stored: the routes are read again
   * @param {(routeRunId: number) => void} options.onShowRun
   */
  constructor({ map, root, toggle, canPlan, directory, runsOfDay, onPlanned, onShowRun }) {
    Object.assign(this, { map, root, toggle, canPlan, directory, runsOfDay, onPlanned, onShowRun });
    const $ = (selector) => root.querySelector(selector);
    this.parts = {
      title: $("#plan-title"),
      tabPlans: $("#plan-tab-plans"),
      tabTasks: $("#plan-tab-tasks"),
      plansView: $("#plan-plans"),
      tasksView: $("#plan-tasks"),
      actions: $("#plan-actions"),
      timeLimit: $("#plan-time-limit"),
      depotField: $("#plan-depot-field"),
      depot: $("#plan-depot"),
      run: $("#plan-run"),
      replaces: $("#plan-replaces"),
      outOfService: $("#plan-out-of-service"),
      busy: $("#plan-busy"),
      replan: $("#plan-replan"),
      list: $("#plan-list"),
      summary: $("#plan-summary"),
    };
    this.date = null;
    this.today = false;
    this.tab = "plans";
    this.plans = []; // of the date, oldest first
    this.shown = null; // the plan whose summary is shown
    this.depots = null;
    this.busy = null; // {timer} while the server plans
    this.planLayer = L.layerGroup();
    this.runOfVehicle = new Map(); // vehicle code -> route run id of the shown plan
    this.outOfService = []; // vehicles a breakdown took out of service
    this.replanForm = new ReplanForm({
      map,
      root: this.parts.replan,
      directory,
      runsOfDay,
      send: (body) => this.send("/api/v1/plans/replan", body),
    });
    this.taskList = new TaskList(this.parts.tasksView);
    this.fillTimeLimits();
    this.wire();
  }

  wire() {
    const p = this.parts;
    this.toggle.addEventListener("click", () => this.setOpen(this.root.hidden));
    this.root.querySelector("#plan-close").addEventListener("click", () => this.setOpen(false));
    p.tabPlans.addEventListener("click", () => this.showTab("plans"));
    p.tabTasks.addEventListener("click", () => this.showTab("tasks"));
    p.run.addEventListener("click", () => this.planDay());
    p.list.addEventListener("change", () => {
      const plan = this.plans.find((x) => x.id === Number.parseInt(p.list.value, 10));
      if (plan) this.showPlan(plan, true);
    });
  }

  get isOpen() {
    return !this.root.hidden;
  }

  // ------------------------------------------------------------ date, opening, tabs

  /** The route panel shows another date (or today rolled over). */
  setDate(date, today) {
    const changed = date !== this.date;
    this.date = date;
    this.today = today;
    if (changed) {
      this.plans = [];
      this.shown = null;
      this.taskList.setDate(date);
      this.planLayer.clearLayers();
      if (!today) this.replanForm.close();
    }
    this.fillStatic();
    if (changed && this.isOpen) this.refresh();
  }

  setOpen(open) {
    this.root.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    // The route table needs a wider sidebar: the map takes what is left.
    this.root.closest(".app")?.classList.toggle("planning-open", open);
    this.map.invalidateSize();
    if (open) {
      this.planLayer.addTo(this.map);
      this.fillStatic();
      this.refresh();
      this.root.scrollIntoView({ block: "nearest" });
    } else {
      this.replanForm.close();
      this.planLayer.remove();
    }
  }

  showTab(tab) {
    this.tab = tab;
    for (const [name, button, view] of [
      ["plans", this.parts.tabPlans, this.parts.plansView],
      ["tasks", this.parts.tabTasks, this.parts.tasksView],
    ]) {
      button.setAttribute("aria-selected", String(name === tab));
      view.hidden = name !== tab;
    }
    if (tab === "tasks") this.loadTasks();
  }

  fillStatic() {
    const p = this.parts;
    const day = this.date ? dateText(this.date) : "";
    p.title.textContent = this.today ? t("plan.title_today") : t("plan.title_date", { date: day });
    p.tabTasks.textContent = this.today ? t("plan.tasks_today") : t("plan.tasks_date");
    p.actions.hidden = !this.canPlan;
    p.replan.hidden = !(this.canPlan && this.today);
    p.replaces.hidden = !(this.canPlan && this.plans.length > 0);
    this.setBusyButtons();
  }

  fillTimeLimits() {
    const chosen = Number.parseFloat(this.parts.timeLimit.value) || DEFAULT_TIME_LIMIT_S;
    this.parts.timeLimit.replaceChildren(
      ...TIME_LIMITS_S.map((s) =>
        el("option", { value: s, selected: s === chosen }, t("plan.seconds_n", { n: s })),
      ),
    );
  }

  refresh() {
    this.loadPlans().catch((failure) => this.failed("plan.load_failed", failure));
    if (this.canPlan && this.depots === null) this.loadDepots();
    if (this.canPlan) this.loadOutOfService();
    if (this.tab === "tasks") this.loadTasks();
  }

  // ------------------------------------------------------------ trucks out of service

  /** Trucks a breakdown took out of service: each with a button that puts it back. */
  async loadOutOfService() {
    try {
      const vehicles = await get("/api/v1/vehicles");
      this.outOfService = vehicles.filter((v) => v.in_service === false);
    } catch (failure) {
      this.failed("plan.load_failed", failure);
      return;
    }
    this.renderOutOfService();
  }

  renderOutOfService() {
    const box = this.parts.outOfService;
    box.hidden = this.outOfService.length === 0;
    box.replaceChildren(
      el("p", { class: "plan-form-title" }, t("plan.out_of_service")),
      el(
        "ul",
        { class: "plan-out-list" },
        ...this.outOfService.map((vehicle) =>
          el(
            "li",
            { dataset: { testid: "out-of-service-vehicle" } },
            el("span", {}, vehicle.code),
            el(
              "button",
              {
                type: "button",
                class: "small",
                dataset: { testid: "put-back" },
                onclick: (event) => this.putBack(vehicle, event.currentTarget),
              },
              t("plan.put_back"),
            ),
          ),
        ),
      ),
    );
  }

  async putBack(vehicle, button) {
    button.disabled = true;
    try {
      await put(`/api/v1/vehicles/${vehicle.id}/in-service`, { in_service: true });
      toast(t("plan.put_back_done", { code: vehicle.code }));
    } catch (failure) {
      this.failed("plan.put_back_failed", failure);
    }
    await this.loadOutOfService();
  }

  loadTasks() {
    this.taskList.load().catch((failure) => this.failed("plan.load_failed", failure));
  }

  failed(key, failure) {
    toast(`${t(key)}: ${failure.reason || failure.message}`, "error");
  }

  async loadDepots() {
    this.depots = [];
    try {
      const fences = await get("/api/v1/geofences");
      this.depots = fences.features
        .filter((f) => f.properties.kind === "depot")
        .map((f) => ({ id: f.properties.id, name: f.properties.name }));
    } catch {
      return; // the server picks the only depot, or says which field is missing
    }
    const { depot, depotField } = this.parts;
    depot.replaceChildren(...this.depots.map((d) => el("option", { value: d.id }, d.name)));
    depotField.hidden = this.depots.length < 2;
  }

  // ------------------------------------------------------------ the date's plans

  async loadPlans(chosenId = null) {
    const date = this.date;
    const plans = await get(`/api/v1/plans?${query({ date })}`);
    if (date !== this.date) return;
    this.plans = plans;
    const keep = chosenId ?? this.shown?.id;
    const plan = plans.find((x) => x.id === keep) || plans[plans.length - 1] || null;
    this.renderList(plan);
    this.fillStatic();
    if (plan) this.showPlan(plan, plan.id !== this.shown?.id);
    else this.showPlan(null, false);
  }

  renderList(chosen) {
    const options = [...this.plans].reverse().map((plan) =>
      el(
        "option",
        { value: plan.id, selected: plan.id === chosen?.id },
        [
          `#${plan.id}`,
          whenText(plan.created_at),
          tOr(`plan.reason_${plan.reason}`, plan.reason),
          plan.created_by || "–",
        ].join(" · "),
      ),
    );
    if (options.length === 0) options.push(el("option", { value: "" }, t("plan.none_option")));
    this.parts.list.replaceChildren(...options);
    this.parts.list.disabled = this.plans.length === 0;
  }

  /** Show a plan's figures; ``draw``: draw its routes afresh and fit the map to them. */
  showPlan(plan, draw) {
    this.shown = plan;
    this.renderSummary();
    if (!plan) {
      this.planLayer.clearLayers();
      this.runOfVehicle.clear();
    } else if (draw) {
      this.drawPlan(plan).catch((failure) => this.failed("plan.load_failed", failure));
    }
  }

  renderSummary() {
    this.parts.summary.replaceChildren(
      ...planSummary(this.shown, (vehicle) => {
        const runId = this.runOfVehicle.get(vehicle);
        if (runId != null) this.onShowRun(runId);
      }),
    );
  }

  /** The plan's routes on the map, each in its row's colour, with their stops. */
  async drawPlan(plan) {
    const ids = [...(plan.route_run_ids || [])];
    const details = [];
    const next = async () => {
      const id = ids.shift();
      if (id === undefined) return;
      details.push(await get(`/api/v1/route-runs/${id}`));
      await next();
    };
    await Promise.all(Array.from({ length: DETAIL_FETCHES_AT_ONCE }, next));
    if (this.shown?.id !== plan.id) return; // another plan was chosen meanwhile
    const order = new Map((plan.summary?.routes || []).map((r, n) => [r.vehicle, n]));
    const codeOf = (detail) =>
      this.directory.vehicle(detail.vehicle_id)?.code ||
      this.runsOfDay().find((r) => r.id === detail.id)?.vehicle_code ||
      "";
    this.planLayer.clearLayers();
    this.runOfVehicle.clear();
    const bounds = L.latLngBounds([]);
    for (const detail of details.sort((a, b) => a.id - b.id)) {
      const code = codeOf(detail);
      this.runOfVehicle.set(code, detail.id);
      const colour = routeColour(order.get(code) ?? details.length);
      const path = (detail.expected_path?.coordinates || []).map(([lon, lat]) => [lat, lon]);
      if (path.length > 1) {
        L.polyline(path, { pane: "route", color: colour, weight: 4, opacity: 0.85, className: LINE_CLASS })
          .bindTooltip(detail.name, { sticky: true })
          .addTo(this.planLayer);
        bounds.extend(path);
      }
      for (const stop of detail.stops || []) {
        if (stop.kind !== "collect") continue;
        L.circleMarker([stop.lat, stop.lon], {
          pane: "route",
          radius: 4,
          color: colour,
          weight: 1.5,
          fillColor: "#fff",
          fillOpacity: 1,
          className: "plan-stop",
        })
          .bindTooltip(`${code} · ${t("routes.stop")} ${stop.seq} · ${clockMinutes(stop.planned_arrival)}`)
          .addTo(this.planLayer);
        bounds.extend([stop.lat, stop.lon]);
      }
    }
    if (bounds.isValid() && this.isOpen) this.map.fitBounds(bounds, { padding: [30, 30], maxZoom: 17 });
  }

  // ------------------------------------------------------------ planning and re-planning

  async planDay() {
    const body = { date: this.date, time_limit_s: Number.parseFloat(this.parts.timeLimit.value) };
    if (!this.parts.depotField.hidden) body.depot_id = Number.parseInt(this.parts.depot.value, 10);
    await this.send("/api/v1/plans", body, body.time_limit_s);
  }

  async send(path, body, limitS = null) {
    if (this.busy) return false;
    this.startBusy(limitS);
    try {
      const plan = await post(path, body);
      const { served = 0, stops = 0 } = plan.summary || {};
      toast(t("plan.done", { id: plan.id, served, stops }));
      if (plan.date === this.date) {
        await this.loadPlans(plan.id).catch((failure) => this.failed("plan.load_failed", failure));
      }
      await this.onPlanned();
      if (this.tab === "tasks") this.loadTasks();
      return true;
    } catch (failure) {
      this.failed("plan.failed", failure);
      return false;
    } finally {
      this.stopBusy();
      // A breakdown takes the truck out of service even when no new plan comes of it.
      if (body.reason === "breakdown") this.loadOutOfService();
    }
  }

  startBusy(limitS) {
    const started = Date.now();
    const tick = () => {
      const s = Math.floor((Date.now() - started) / 1000);
      this.parts.busy.replaceChildren(
        el("span", { class: "spinner", "aria-hidden": "true" }),
        limitS ? t("plan.busy_limit", { s, limit: limitS }) : t("plan.busy", { s }),
      );
    };
    this.busy = { timer: setInterval(tick, 1000) };
    tick();
    this.parts.busy.hidden = false;
    this.root.setAttribute("aria-busy", "true");
    this.setBusyButtons();
  }

  stopBusy() {
    clearInterval(this.busy?.timer);
    this.busy = null;
    this.parts.busy.hidden = true;
    this.root.removeAttribute("aria-busy");
    this.setBusyButtons();
  }

  setBusyButtons() {
    const busy = this.busy !== null;
    this.parts.run.disabled = busy;
    this.replanForm.setBusy(busy);
  }

  // ------------------------------------------------------------ language

  relabel() {
    this.fillStatic();
    this.fillTimeLimits();
    this.renderList(this.shown);
    if (this.isOpen) this.renderSummary();
    if (this.outOfService.length) this.renderOutOfService();
    this.taskList.relabel();
    this.replanForm.relabel();
  }
}
