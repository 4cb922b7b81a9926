// Everyone's tasks on the plan panel's date: per person, the runs they drive or collect on
// and when.

import { get, query } from "./api.js";
import { clockMinutes } from "./format.js";
import { t, tOr } from "./i18n.js";
import { el } from "./ui.js";

export class TaskList {
  /** @param {HTMLElement} view the tasks tab */
  constructor(view) {
    this.view = view;
    this.date = null;
    this.tasks = null; // null until read for the date
  }

  setDate(date) {
    this.date = date;
    this.tasks = null;
  }

  /** Rejects when the tasks cannot be read; the answer for a date left meanwhile is dropped. */
  async load() {
    const date = this.date;
    const people = await get(`/api/v1/tasks?${query({ date })}`);
    if (date !== this.date) return;
    this.tasks = people;
    this.render();
  }

  relabel() {
    if (this.tasks) this.render();
  }

  render() {
    if (!this.tasks?.length) {
      this.view.replaceChildren(el("p", { class: "note" }, t(this.tasks ? "plan.no_tasks" : "common.loading")));
      return;
    }
    const people = [...this.tasks].sort((a, b) => a.name.localeCompare(b.name, "vi"));
    this.view.replaceChildren(
      el(
        "ol",
        { class: "task-people" },
        people.map((person) =>
          el(
            "li",
            { dataset: { testid: "task-person", staffId: person.staff_id } },
            el("strong", {}, person.name || `#${person.staff_id}`),
            el(
              "ul",
              { class: "task-list" },
              person.tasks.map((task) =>
                el(
                  "li",
                  { dataset: { testid: "task", role: task.role, routeRunId: task.route_run_id } },
                  el("span", { class: "task-role" }, tOr(`plan.role_${task.role}`, task.role)),
                  ` · ${task.vehicle_code || "–"} · ${task.run_name} · `,
                  t("routes.stops_n", { n: task.stops }),
                  ` · ${clockMinutes(task.planned_start)}–${clockMinutes(task.planned_end)}`,
                  task.status === "planned" ? null : ` · ${tOr(`route_status.${task.status}`, task.status)}`,
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }
}
