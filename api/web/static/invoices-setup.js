// The company's invoice series (list, add, retire or use again: a used series is never
// edited, the server refuses it) and the seller's details printed on every invoice.

import { whenText } from "./format.js";
import { t } from "./i18n.js";
import { TEMPLATES, button, field, invoicesApi, reasonOf } from "./invoices-api.js";
import { el, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const SELLER_FIELDS = [
  ["legal_name", 300],
  ["tax_code", 14],
  ["address", 500],
  ["phone", 50],
  ["email", 320],
  ["bank_account", 100],
  ["bank_name", 200],
];

export class SetupPanel {
  /**
   * @param {object} options
   * @param {boolean} options.canWrite add and retire series, save the seller
   * @param {(series: object[]) => void} options.onSeries the series changed (or were read)
   * @param {(seller: object|null) => void} options.onSeller the seller was read or saved
   */
  constructor({ canWrite, onSeries, onSeller }) {
    this.canWrite = canWrite;
    this.onSeries = onSeries;
    this.onSeller = onSeller;
    this.series = [];
    this.seller = null;
  }

  async load() {
    try {
      [this.series, this.seller] = await Promise.all([invoicesApi.series(), invoicesApi.seller()]);
    } catch (failure) {
      toast(`${t("inv.load_failed")}: ${reasonOf(failure)}`, "error");
    }
    this.onSeries(this.series);
    this.onSeller(this.seller);
    this.render();
  }

  relabel() {
    this.render();
  }

  render() {
    $("series-body").replaceChildren(this.seriesTable());
    if (this.canWrite) $("series-body").append(this.seriesForm());
    $("seller-body").replaceChildren(this.sellerForm());
  }

  seriesTable() {
    const head = ["inv.series_code", "inv.series_name", "inv.series_issued", "inv.series_state", null];
    return el(
      "table",
      { class: "compact list", dataset: { testid: "series-table" } },
      el("thead", {}, el("tr", {}, ...head.map((key) => el("th", { scope: "col" }, key ? t(key) : "")))),
      el(
        "tbody",
        {},
        ...(this.series.length
          ? this.series.map((s) => this.seriesRow(s))
          : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, t("inv.none")))]),
      ),
    );
  }

  seriesRow(series) {
    const toggle = this.canWrite
      ? button(
          t(series.active ? "inv.series_retire" : "inv.series_reactivate"),
          (control) => this.setActive(series, !series.active, control),
          { testid: series.active ? "series-retire" : "series-reactivate" },
        )
      : null;
    const used = series.last_issued_at ? ` · ${whenText(series.last_issued_at)}` : "";
    return el(
      "tr",
      { dataset: { testid: "series-row", seriesId: series.id, active: String(series.active) } },
      el("td", { class: "code" }, series.code),
      el("td", {}, series.name),
      el("td", {}, `${series.issued_count}${used}`),
      el("td", {}, t(series.active ? "inv.series_active" : "inv.series_retired")),
      el("td", {}, toggle),
    );
  }

  async setActive(series, active, control) {
    control.disabled = true;
    try {
      await invoicesApi.updateSeries(series.id, { active });
      await this.load();
    } catch (failure) {
      toast(`${t("inv.failed")}: ${reasonOf(failure)}`, "error");
      control.disabled = false;
    }
  }

  seriesForm() {
    const template = el(
      "select",
      { name: "template" },
      ...TEMPLATES.map((tpl) => el("option", { value: tpl }, t(`inv.template_${tpl}`))),
    );
    const year = new Date().getFullYear() % 100;
    const symbol = el("input", {
      name: "symbol",
      required: true,
      maxlength: 6,
      pattern: "[CK][0-9]{2}[TDLMNBGH][A-Z]{2}",
      placeholder: `C${year}TAA`,
      autocapitalize: "characters",
      spellcheck: "false",
      dataset: { testid: "series-symbol" },
    });
    const name = el("input", { name: "name", maxlength: 200 });
    const error = el("p", { class: "form-error", role: "alert" });
    const form = el(
      "form",
      { class: "edit-form", dataset: { testid: "series-form" }, novalidate: true },
      field("inv.series_template", template),
      field("inv.series_symbol", symbol),
      field("inv.series_name", name),
      el("div", { class: "button-row" }, el("button", { type: "submit", class: "primary small" }, t("inv.series_new"))),
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        const created = await invoicesApi.createSeries({
          template: template.value,
          symbol: symbol.value.trim().toUpperCase(),
          name: name.value.trim(),
        });
        toast(t("inv.series_created", { code: created.code }));
        await this.load();
      } catch (failure) {
        error.textContent = reasonOf(failure);
      }
    });
    return el("details", { class: "action" }, el("summary", {}, t("inv.series_new")), form);
  }

  sellerForm() {
    const seller = this.seller || {};
    const error = el("p", { class: "form-error", role: "alert" });
    const inputs = SELLER_FIELDS.map(([name, max]) =>
      field(
        `inv.seller_${name}`,
        el("input", { name, maxlength: max, value: seller[name] || "", disabled: !this.canWrite }),
      ),
    );
    const form = el(
      "form",
      { class: "edit-form", dataset: { testid: "seller-form" }, novalidate: true },
      this.seller ? null : el("p", { class: "stale wide" }, t("inv.seller_missing")),
      ...inputs,
      this.canWrite
        ? el("div", { class: "button-row" }, el("button", { type: "submit", class: "primary small" }, t("inv.save")))
        : null,
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const body = Object.fromEntries(SELLER_FIELDS.map(([name]) => [name, form.elements[name].value.trim()]));
      try {
        this.seller = await invoicesApi.saveSeller(body);
        this.onSeller(this.seller);
        toast(t("inv.saved"));
        this.render();
      } catch (failure) {
        error.textContent = reasonOf(failure);
      }
    });
    return form;
  }
}
