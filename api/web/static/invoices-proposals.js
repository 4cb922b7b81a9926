// Adjustment proposals: what the charge runs found changed in periods already invoiced.
// The accountant ticks some and drafts their adjustments (one per buyer and month of
// issue) with a reason, or dismisses them.

import { t } from "./i18n.js";
import { button, dateText, invoicesApi, money, reasonOf } from "./invoices-api.js";
import { el, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);

export class ProposalsPanel {
  /**
   * @param {object} options
   * @param {boolean} options.canWrite accept and dismiss
   * @param {(invoiceId: number) => void} options.onOpen open an invoice
   * @param {() => void} options.onChanged adjustments were drafted
   */
  constructor({ canWrite, onOpen, onChanged }) {
    this.canWrite = canWrite;
    this.onOpen = onOpen;
    this.onChanged = onChanged;
    this.proposals = [];
    $("proposals-reload").addEventListener("click", () => this.load());
  }

  async load() {
    try {
      this.proposals = await invoicesApi.proposals();
    } catch (failure) {
      toast(`${t("inv.load_failed")}: ${reasonOf(failure)}`, "error");
    }
    this.render();
  }

  relabel() {
    this.render();
  }

  render() {
    const body = $("proposals-body");
    if (!this.proposals.length) {
      body.replaceChildren(el("p", { class: "note", dataset: { testid: "proposals-empty" } }, t("inv.proposals_none")));
      return;
    }
    const head = [
      "",
      "inv.proposal_customer",
      "inv.proposal_invoice",
      "inv.proposal_period",
      "inv.proposal_invoiced",
      "inv.proposal_recomputed",
      "inv.proposal_difference",
    ];
    const table = el(
      "table",
      { class: "compact list results", dataset: { testid: "proposals-table" } },
      el("thead", {}, el("tr", {}, ...head.map((key) => el("th", { scope: "col" }, key ? t(key) : "")))),
      el("tbody", {}, ...this.proposals.map((p) => this.row(p))),
    );
    body.replaceChildren(el("div", { class: "table-scroll" }, table));
    if (this.canWrite) body.append(this.decision());
  }

  row(proposal) {
    return el(
      "tr",
      { dataset: { testid: "proposal-row", proposalId: proposal.id } },
      el(
        "td",
        {},
        this.canWrite
          ? el("input", { type: "checkbox", name: "proposal", value: proposal.id, "aria-label": `#${proposal.id}` })
          : null,
      ),
      el("td", {}, el("div", {}, proposal.customer_name), el("div", { class: "note" }, proposal.customer_code)),
      el(
        "td",
        {},
        button(`#${proposal.invoice_id}`, () => this.onOpen(proposal.invoice_id), { className: "link" }),
      ),
      el("td", {}, `${dateText(proposal.period_start)} · ${proposal.service} (${proposal.component})`),
      el("td", { class: "money" }, money(proposal.invoiced_amount_vnd)),
      el("td", { class: "money" }, money(proposal.recomputed_amount_vnd)),
      el("td", { class: "money" }, money(proposal.difference_vnd)),
    );
  }

  decision() {
    const reason = el("input", {
      name: "reason",
      maxlength: 2000,
      "aria-label": t("inv.proposal_reason"),
      placeholder: t("inv.proposal_reason"),
    });
    const error = el("p", { class: "form-error", role: "alert" });
    const chosen = () =>
      [...$("proposals-body").querySelectorAll("input[name=proposal]:checked")].map((box) => Number(box.value));
    const act = (action) => async (control) => {
      const ids = chosen();
      error.textContent = "";
      if (!ids.length) {
        error.textContent = t("inv.pick_some");
        return;
      }
      control.disabled = true;
      try {
        if (action === "accept") {
          const answer = await invoicesApi.accept(ids, reason.value.trim());
          toast(t("inv.accepted", { n: answer.adjustment_invoices.length }));
          this.onChanged();
        } else {
          const answer = await invoicesApi.dismiss(ids);
          toast(t("inv.dismissed", { n: answer.dismissed }));
        }
        await this.load();
      } catch (failure) {
        error.textContent = reasonOf(failure);
        control.disabled = false;
      }
    };
    return el(
      "div",
      { class: "decision" },
      reason,
      el(
        "div",
        { class: "button-row" },
        button(t("inv.accept"), act("accept"), { testid: "proposals-accept", className: "primary small" }),
        button(t("inv.dismiss"), act("dismiss"), { testid: "proposals-dismiss" }),
      ),
      error,
    );
  }
}
