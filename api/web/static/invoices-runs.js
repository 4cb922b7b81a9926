// Billing runs: the form that bills a period (kind, starting month, series), what the run
// did (drafts, total, points that could not be priced), the recent runs with their
// period's state, and issuing every draft of a run in one go.

import { localDate, whenText } from "./format.js";
import { t } from "./i18n.js";
import {
  PERIOD_KINDS,
  button,
  dateText,
  invoicesApi,
  money,
  monthStart,
  periodText,
  reasonOf,
} from "./invoices-api.js";
import { el, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const PROBLEMS_SHOWN = 20;

export class RunsPanel {
  /**
   * @param {object} options
   * @param {boolean} options.canWrite run, issue and close (admin, accountant)
   * @param {() => object[]} options.series the company's series
   * @param {(runId: number) => void} options.onShowInvoices open the list on a run's invoices
   * @param {() => void} options.onChanged invoices were drafted or issued
   */
  constructor({ canWrite, series, onShowInvoices, onChanged }) {
    this.canWrite = canWrite;
    this.series = series;
    this.onShowInvoices = onShowInvoices;
    this.onChanged = onChanged;
    this.runs = [];
    this.states = new Map(); // "monthly/2026-06-01" -> period state
    this.form = $("run-form");
    this.result = $("run-result");
    this.form.hidden = !canWrite;
    this.form.addEventListener("submit", (event) => this.submit(event));
    $("runs-reload").addEventListener("click", () => this.load());
    $("run-start").value = localDate().slice(0, 7);
    this.relabel();
  }

  relabel() {
    const kind = $("run-kind");
    const chosen = kind.value || "monthly";
    kind.replaceChildren(...PERIOD_KINDS.map((k) => el("option", { value: k }, t(`inv.period_${k}`))));
    kind.value = chosen;
    this.fillSeries();
    this.render();
  }

  fillSeries() {
    const select = $("run-series");
    const chosen = select.value;
    const active = this.series().filter((s) => s.active);
    select.replaceChildren(
      ...active.map((s) => el("option", { value: s.id }, s.name ? `${s.code} · ${s.name}` : s.code)),
    );
    if (active.some((s) => String(s.id) === chosen)) select.value = chosen;
  }

  async load() {
    try {
      this.runs = await invoicesApi.runs();
      const periods = new Map(this.runs.map((r) => [`${r.billing_period}/${r.period_start}`, r]));
      const states = await Promise.all(
        [...periods.values()].map((r) => invoicesApi.periodState(r.billing_period, r.period_start)),
      );
      this.states = new Map(states.map((s) => [`${s.billing_period}/${s.period_start}`, s]));
    } catch (failure) {
      toast(`${t("inv.load_failed")}: ${reasonOf(failure)}`, "error");
    }
    this.render();
  }

  render() {
    const body = $("runs-body");
    if (!this.runs.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "empty" }, t("inv.none"))));
      return;
    }
    body.replaceChildren(...this.runs.map((run) => this.row(run)));
  }

  row(run) {
    const state = this.states.get(`${run.billing_period}/${run.period_start}`);
    const actions = el("td", { class: "actions" });
    actions.append(button(t("inv.show_invoices"), () => this.onShowInvoices(run.id)));
    if (this.canWrite && state && state.drafts > 0) {
      actions.append(
        button(t("inv.issue_all"), (b) => this.issueAll(run, b), {
          testid: "run-issue-all",
          className: "small primary",
        }),
      );
    }
    if (this.canWrite && state && state.status === "open" && state.drafts === 0 && state.issued > 0) {
      actions.append(button(t("inv.close_period"), () => this.close(run)));
    }
    const stateText = state
      ? `${t(`inv.period_${state.status}`)} · ${t("inv.period_counts", { drafts: state.drafts, issued: state.issued })}`
      : "";
    return el(
      "tr",
      { dataset: { testid: "run-row", runId: run.id } },
      el("td", { class: "code" }, `#${run.id}`),
      el("td", {}, whenText(run.started_at)),
      el("td", {}, `${t(`inv.period_${run.billing_period}`)} ${periodText(run.billing_period, run.period_start)}`),
      el("td", {}, String(run.invoices_drafted)),
      el("td", { class: "money" }, money(run.total_vnd)),
      el("td", {}, String(run.problems_count)),
      el("td", {}, stateText),
      actions,
    );
  }

  async submit(event) {
    event.preventDefault();
    const error = $("run-error");
    const start = monthStart($("run-start").value);
    const seriesId = Number($("run-series").value);
    error.textContent = "";
    if (!start) {
      error.textContent = `${t("inv.run_start")}?`;
      return;
    }
    if (!seriesId) {
      error.textContent = `${t("inv.run_series")}?`;
      return;
    }
    const submit = $("run-submit");
    submit.disabled = true;
    this.result.hidden = false;
    this.result.replaceChildren(el("p", { class: "note" }, t("inv.running")));
    try {
      const run = await invoicesApi.run({
        billing_period: $("run-kind").value,
        period_start: start,
        series_id: seriesId,
      });
      this.showResult(run);
      this.onChanged();
      await this.load();
    } catch (failure) {
      this.result.hidden = true;
      error.textContent = reasonOf(failure);
    } finally {
      submit.disabled = false;
    }
  }

  showResult(run) {
    const problems = (run.problems || []).slice(0, PROBLEMS_SHOWN);
    // Through a wrapper, so that a part left out (null) is skipped by el().
    const parts = el(
      "div",
      {},
      el(
        "p",
        { dataset: { testid: "run-summary", drafted: run.invoices_drafted, runId: run.id } },
        t("inv.run_done", {
          drafted: run.invoices_drafted,
          total: money(run.total_vnd),
          replaced: run.drafts_replaced,
          problems: run.problems_count,
        }),
      ),
      run.postpaid_waiting
        ? el("p", { class: "note", dataset: { testid: "run-waiting" } }, t("inv.run_waiting", { n: run.postpaid_waiting }))
        : null,
      problems.length
        ? el(
            "ul",
            { class: "problems" },
            ...problems.map((p) =>
              el("li", {}, t("inv.run_problem", { point: p.service_point_id, service: p.service, reason: p.reason })),
            ),
          )
        : null,
      el(
        "div",
        { class: "button-row" },
        button(t("inv.show_invoices"), () => this.onShowInvoices(run.id), { testid: "run-show-invoices" }),
        this.canWrite && run.invoices_drafted > 0
          ? button(t("inv.issue_all"), (b) => this.issueAll(run, b), {
              testid: "run-result-issue-all",
              className: "small primary",
            })
          : null,
      ),
    );
    this.result.replaceChildren(...parts.childNodes);
  }

  async issueAll(run, control) {
    if (!window.confirm(t("inv.issue_all_confirm"))) return;
    control.disabled = true;
    try {
      const summary = await invoicesApi.issueBatch({ billing_run_id: run.id });
      this.showIssued(summary);
      this.onChanged();
    } catch (failure) {
      if (failure.body?.error?.issued) this.showIssued(failure.body.error.issued);
      toast(`${t("inv.failed")}: ${reasonOf(failure)}`, "error");
    } finally {
      control.disabled = false;
      await this.load();
    }
  }

  showIssued(summary) {
    const ranges = summary.series.map((s) =>
      t("inv.issued_range", { series: s.series, first: s.first_number, last: s.last_number }),
    );
    const counts = t("inv.issued_summary", { n: summary.issued, total: money(summary.total_vnd) });
    const text = `${counts} ${ranges.join("; ")}`;
    this.result.hidden = false;
    this.result.append(el("p", { class: "issued", dataset: { testid: "run-issued" } }, text));
    toast(text);
  }

  async close(run) {
    if (!window.confirm(t("inv.close_confirm"))) return;
    try {
      await invoicesApi.closePeriod(run.billing_period, run.period_start);
      toast(`${t("inv.period_closed")}: ${dateText(run.period_start)}`);
    } catch (failure) {
      toast(`${t("inv.failed")}: ${reasonOf(failure)}`, "error");
    }
    await this.load();
  }
}
