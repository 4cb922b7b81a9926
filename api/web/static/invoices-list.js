// The invoices list: filters the server applies (status, period, area, collector, billing
// run), pages of up to 200 newest first ("Load more" continues after the last id), and a
// search by number or buyer among the invoices loaded.

import { t } from "./i18n.js";
import {
  STATUSES,
  invoicesApi,
  money,
  monthStart,
  periodText,
  printCollectorBook,
  printInvoices,
  reasonOf,
  statusBadge,
} from "./invoices-api.js";
import { debounce, el, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 200;
const TYPING_PAUSE_MS = 200;

/** Lower case without diacritics: "Nguyễn" and "nguyen" read the same. */
function plain(text) {
  return String(text || "")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/đ/g, "d")
    .replace(/Đ/g, "D")
    .toLowerCase();
}

export class InvoiceList {
  /**
   * @param {object} options
   * @param {boolean} options.canWrite print batches and books (recorded: admin, accountant)
   * @param {(invoiceId: number) => void} options.onSelect open an invoice
   */
  constructor({ canWrite, onSelect }) {
    this.onSelect = onSelect;
    this.status = $("filter-status");
    this.period = $("filter-period");
    this.area = $("filter-area");
    this.collector = $("filter-collector");
    this.search = $("filter-number");
    this.areas = [];
    this.collectors = [];
    this.runId = null;
    this.invoices = [];
    this.complete = true;
    this.selectedId = null;
    this.controller = null;
    for (const control of [this.status, this.period, this.area, this.collector]) {
      control.addEventListener("change", () => this.reload());
    }
    // A number is looked up on the server (among every invoice); a name among those loaded.
    this.search.addEventListener(
      "input",
      debounce(() => (/^\d*$/.test(this.search.value.trim()) ? this.reload() : this.render()), TYPING_PAUSE_MS),
    );
    $("list-more").addEventListener("click", () => this.more());
    $("filter-run-clear").addEventListener("click", () => this.showRun(null));
    for (const id of ["print-invoices", "print-book"]) $(id).hidden = !canWrite;
    $("print-invoices").addEventListener("click", (event) => this.print(event.currentTarget));
    $("print-book").addEventListener("click", (event) => this.printBook(event.currentTarget));
  }

  /** The scope filtered by area, collector or period; else the issued invoices loaded. */
  async print(button) {
    const params = this.params();
    const scoped = params.area_id || params.collector_staff_id || params.period_start;
    const scope = scoped
      ? { area_id: params.area_id, collector_staff_id: params.collector_staff_id, period_start: params.period_start }
      : { invoice_ids: this.shown().filter((i) => i.number !== null).map((i) => i.id) };
    if (!scoped && !scope.invoice_ids.length) {
      toast(t("inv.print_none"), "error");
      return;
    }
    button.disabled = true;
    try {
      const response = await printInvoices(scope);
      const [n, reprints, pages] = ["x-invoice-count", "x-reprints", "x-pages"].map((h) => response.headers.get(h));
      toast(t("inv.print_done", { n, reprints, pages }));
    } catch (failure) {
      toast(`${t("inv.failed")}: ${reasonOf(failure)}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  async printBook(button) {
    const params = this.params();
    if (!params.collector_staff_id || !params.period_start) {
      toast(t("inv.book_needs"), "error");
      return;
    }
    button.disabled = true;
    try {
      await printCollectorBook(params.collector_staff_id, params.period_start);
    } catch (failure) {
      toast(`${t("inv.failed")}: ${reasonOf(failure)}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  fill(areas, staff) {
    this.areas = areas;
    this.collectors = staff.filter((s) => !s.role || s.role === "collector");
    this.relabel();
  }

  relabel() {
    const [status, area, collector] = [this.status.value, this.area.value, this.collector.value];
    this.status.replaceChildren(
      el("option", { value: "" }, t("inv.all")),
      ...STATUSES.map((s) => el("option", { value: s }, t(`inv.status_${s}`))),
    );
    this.area.replaceChildren(
      el("option", { value: "" }, t("inv.all")),
      ...this.areas.map((a) => el("option", { value: a.id }, `${a.code} · ${a.name}`)),
    );
    this.collector.replaceChildren(
      el("option", { value: "" }, t("inv.all")),
      ...this.collectors.map((p) => el("option", { value: p.id }, p.full_name)),
    );
    [this.status.value, this.area.value, this.collector.value] = [status, area, collector];
    $("filter-run-text").textContent = this.runId ? t("inv.filter_run", { id: this.runId }) : "";
    this.render();
  }

  params() {
    const wanted = (value) => (value === "" ? null : value);
    return {
      status: wanted(this.status.value),
      period_start: monthStart(this.period.value),
      area_id: wanted(this.area.value),
      collector_staff_id: wanted(this.collector.value),
      billing_run_id: this.runId,
      number: /^\d+$/.test(this.search.value.trim()) ? Number(this.search.value.trim()) : null,
      limit: PAGE_SIZE,
    };
  }

  /** Only the invoices of billing run ``runId`` (null: of every run and none). */
  showRun(runId) {
    this.runId = runId;
    $("filter-run").hidden = runId === null;
    $("filter-run-text").textContent = runId ? t("inv.filter_run", { id: runId }) : "";
    return this.reload();
  }

  async reload() {
    this.invoices = [];
    this.complete = false;
    await this.fetchPage(null);
  }

  async more() {
    const last = this.invoices.at(-1);
    if (last) await this.fetchPage(last.id);
  }

  async fetchPage(afterId) {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    try {
      const page = await invoicesApi.list({ ...this.params(), after_id: afterId }, controller.signal);
      if (controller.signal.aborted) return;
      this.invoices = afterId === null ? page : [...this.invoices, ...page];
      this.complete = page.length < PAGE_SIZE;
    } catch (failure) {
      if (failure.name === "AbortError") return;
      toast(`${t("inv.load_failed")}: ${reasonOf(failure)}`, "error");
    }
    this.render();
  }

  /** Put ``invoice`` (as the server answered it) in place of the row it was. */
  update(invoice) {
    const index = this.invoices.findIndex((i) => i.id === invoice.id);
    if (index >= 0) this.invoices[index] = { ...this.invoices[index], ...invoice };
    this.render();
  }

  remove(invoiceId) {
    this.invoices = this.invoices.filter((i) => i.id !== invoiceId);
    this.render();
  }

  select(invoiceId) {
    this.selectedId = invoiceId;
    for (const row of $("invoice-body").querySelectorAll("tr[data-invoice-id]")) {
      row.classList.toggle("selected", Number(row.dataset.invoiceId) === invoiceId);
    }
  }

  shown() {
    const wanted = plain(this.search.value.trim());
    if (!wanted) return this.invoices;
    const digits = /^\d+$/.test(wanted) ? String(Number(wanted)) : null;
    return this.invoices.filter(
      (i) =>
        (digits !== null && (String(i.number ?? "") === digits || String(i.id) === digits)) ||
        plain(i.buyer_name).includes(wanted) ||
        plain(i.buyer_code).includes(wanted),
    );
  }

  render() {
    const body = $("invoice-body");
    const shown = this.shown();
    $("list-count").textContent = t("inv.count", { n: this.invoices.length });
    $("list-more").hidden = this.complete;
    if (!shown.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "empty" }, t("inv.no_invoices"))));
      return;
    }
    body.replaceChildren(...shown.map((invoice) => this.row(invoice)));
  }

  row(invoice) {
    return el(
      "tr",
      {
        class: `clickable${invoice.id === this.selectedId ? " selected" : ""}`,
        tabindex: 0,
        dataset: { testid: "invoice-row", invoiceId: invoice.id, status: invoice.status },
        onclick: () => this.onSelect(invoice.id),
        onkeydown: (event) => event.key === "Enter" && this.onSelect(invoice.id),
      },
      el("td", { class: "code" }, `#${invoice.id}`),
      el("td", { class: "code" }, invoice.series_code || ""),
      el("td", { class: "code", dataset: { testid: "invoice-number" } }, invoice.number_text || "–"),
      el("td", {}, el("div", {}, invoice.buyer_name), el("div", { class: "note" }, invoice.buyer_code)),
      el("td", {}, periodText(invoice.billing_period, invoice.period_start)),
      el("td", { class: "money" }, money(invoice.total_vnd)),
      el("td", {}, statusBadge(invoice.status)),
    );
  }
}
