// The search box, the filters and the results table. The search runs as the clerk types
// (after a short pause; a newer query cancels the older one); the server ignores
// diacritics and case, so "nguyen van a" finds "Nguyễn Văn A". The filters are shared
// with the customer map.

import { book } from "./customers-api.js";
import { t, tOr } from "./i18n.js";
import { debounce, el, toast } from "./ui.js";

export const STATUSES = ["active", "suspended", "terminated"];
export const KINDS = ["household", "business_household", "business", "agency"];
const PAGE_SIZE = 50;
const TYPING_PAUSE_MS = 250;
const $ = (id) => document.getElementById(id);

/** The filter controls: area, class, status, collector. */
export class Filters {
  constructor({ onChange }) {
    this.area = $("filter-area");
    this.customerClass = $("filter-class");
    this.status = $("filter-status");
    this.collector = $("filter-collector");
    this.areas = [];
    this.staff = [];
    const changed = debounce(onChange, TYPING_PAUSE_MS);
    for (const control of [this.area, this.status, this.collector]) control.addEventListener("change", onChange);
    this.customerClass.addEventListener("input", () => this.customerClass.checkValidity() && changed());
  }

  fill(areas, staff) {
    this.areas = areas;
    this.staff = staff;
    this.relabel();
  }

  relabel() {
    const keep = (select) => select.value;
    const [area, status, collector] = [keep(this.area), keep(this.status), keep(this.collector)];
    this.area.replaceChildren(
      el("option", { value: "" }, t("cust.all")),
      ...this.areas.map((a) => el("option", { value: a.id }, `${a.code} · ${a.name}`)),
    );
    this.status.replaceChildren(
      el("option", { value: "" }, t("cust.all")),
      ...STATUSES.map((s) => el("option", { value: s }, t(`cust.status_${s}`))),
    );
    this.collector.replaceChildren(
      el("option", { value: "" }, t("cust.all")),
      ...this.staff.map((p) => el("option", { value: p.id }, p.full_name)),
    );
    [this.area.value, this.status.value, this.collector.value] = [area, status, collector];
  }

  /** The chosen filters as query parameters (unset ones left out). */
  params() {
    const wanted = (value) => (value === "" ? null : value);
    const customerClass = this.customerClass.value.trim();
    return {
      area_id: wanted(this.area.value),
      customer_class: customerClass && this.customerClass.checkValidity() ? customerClass : null,
      status: wanted(this.status.value),
      collector_staff_id: wanted(this.collector.value),
    };
  }

  areaName(id) {
    const area = this.areas.find((a) => a.id === id);
    return area ? area.name : "";
  }
}

export class SearchPanel {
  /**
   * @param {object} options
   * @param {Filters} options.filters
   * @param {(customerId: number, pointId: number) => void} options.onSelect
   */
  constructor({ filters, onSelect }) {
    this.filters = filters;
    this.onSelect = onSelect;
    this.input = $("search-input");
    this.body = $("results-body");
    this.count = $("result-count");
    this.offset = 0;
    this.results = [];
    this.pending = null;
    this.selectedPoint = null;
    this.searches = 0; // answered searches, for tests
    const typed = debounce(() => this.run(0), TYPING_PAUSE_MS);
    this.input.addEventListener("input", typed);
    $("customer-search").addEventListener("submit", (event) => {
      event.preventDefault();
      this.run(0);
    });
    $("page-prev").addEventListener("click", () => this.run(Math.max(0, this.offset - PAGE_SIZE)));
    $("page-next").addEventListener("click", () => this.run(this.offset + PAGE_SIZE));
  }

  async run(offset = this.offset) {
    this.pending?.abort();
    const controller = new AbortController();
    this.pending = controller;
    const params = { q: this.input.value.trim(), ...this.filters.params(), limit: PAGE_SIZE, offset };
    try {
      const found = await book.search(params, controller.signal);
      if (controller.signal.aborted) return;
      this.offset = offset;
      this.results = found;
      this.searches += 1;
      this.render();
    } catch (failure) {
      if (failure.name === "AbortError") return;
      toast(`${t("cust.search_failed")}: ${failure.reason || failure.message}`, "error");
    }
  }

  render() {
    const rows = this.results.map((point) =>
      el(
        "tr",
        {
          class: `clickable${point.id === this.selectedPoint ? " selected" : ""}`,
          tabindex: 0,
          dataset: { testid: "result-row", pointId: point.id, customerId: point.customer_id },
          onclick: () => this.pick(point),
          onkeydown: (event) => (event.key === "Enter" || event.key === " ") && this.pick(point),
        },
        el("td", { class: "code" }, point.code),
        el("td", {}, point.name),
        el("td", {}, point.address || point.ward || ""),
        el("td", {}, statusBadge(point.status)),
      ),
    );
    if (rows.length === 0) {
      rows.push(el("tr", {}, el("td", { colspan: 4, class: "empty" }, t("cust.no_results"))));
    }
    this.body.replaceChildren(...rows);
    const first = this.results.length ? this.offset + 1 : 0;
    this.count.textContent = t("cust.results", { from: first, to: this.offset + this.results.length });
    $("page-prev").disabled = this.offset === 0;
    $("page-next").disabled = this.results.length < PAGE_SIZE;
    $("page-label").textContent = t("cust.page", { n: Math.floor(this.offset / PAGE_SIZE) + 1 });
  }

  pick(point) {
    this.selectedPoint = point.id;
    this.render();
    this.onSelect(point.customer_id, point.id);
  }

  relabel() {
    this.render();
  }
}

/** A status as a word with a shape beside it (not a colour alone). */
export function statusBadge(status) {
  return el("span", { class: `badge status-${status}` }, tOr(`cust.status_${status}`, status));
}
