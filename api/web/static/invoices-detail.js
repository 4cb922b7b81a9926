// One invoice: its buyer, numbers and totals, its lines, the invoices it corrects and the
// corrections of it, its error notices, agreements and e-invoice attempts, and the actions
// its state allows (the server refuses the others anyway): issue or delete a draft, cancel
// before delivery, a notice of a wrong name or address, draft a replacement or an
// adjustment, attach the buyer's agreement to a correction, mark delivered, the PDF.

import { whenText } from "./format.js";
import { t, tOr } from "./i18n.js";
import {
  CHANNELS,
  SERVICES,
  VAT_RATES,
  button,
  dateText,
  download,
  field,
  invoicesApi,
  money,
  options,
  periodText,
  reasonOf,
  statusBadge,
  uploadAgreement,
} from "./invoices-api.js";
import { el, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const NUMBERED_LIVE = new Set(["issued", "sent", "coded"]);
const CORRECTABLE = new Set(["issued", "sent", "coded", "delivered", "adjusted"]);
const LINE_COLUMNS = [
  "inv.line_no",
  "inv.line_description",
  "inv.line_quantity",
  "inv.line_vat_rate",
  "inv.line_amount",
];

export class InvoiceDetail {
  /**
   * @param {object} options
   * @param {boolean} options.canWrite the actions (admin, accountant)
   * @param {(invoice: object|null, removedId?: number) => void} options.onChanged after an action
   * @param {(invoiceId: number) => void} options.onOpen open another invoice (a correction)
   */
  constructor({ canWrite, onChanged, onOpen }) {
    this.canWrite = canWrite;
    this.onChanged = onChanged;
    this.onOpen = onOpen;
    this.root = $("invoice-detail");
    this.invoice = null;
  }

  async show(invoiceId) {
    try {
      this.invoice = await invoicesApi.invoice(invoiceId);
    } catch (failure) {
      toast(`${t("inv.load_failed")}: ${reasonOf(failure)}`, "error");
      return;
    }
    this.render();
  }

  reload() {
    return this.invoice ? this.show(this.invoice.id) : Promise.resolve();
  }

  clear() {
    this.invoice = null;
    this.root.hidden = true;
    $("detail-hint").hidden = false;
  }

  relabel() {
    if (this.invoice) this.render();
  }

  render() {
    const invoice = this.invoice;
    this.root.hidden = false;
    $("detail-hint").hidden = true;
    this.root.dataset.invoiceId = invoice.id;
    this.root.dataset.status = invoice.status;
    // A wrapper, so that the parts left out (null) are skipped by el(), not written "null".
    const parts = el(
      "div",
      {},
      el(
        "div",
        { class: "panel-header" },
        el("h2", {}, t("inv.detail_title", { id: invoice.id })),
        statusBadge(invoice.status),
      ),
      el("p", { class: "subtitle" }, tOr(`inv.kind_${invoice.kind}`, invoice.kind)),
      this.facts(invoice),
      this.lines(invoice),
      ...this.related(invoice),
      ...this.records(invoice),
      this.canWrite ? this.actions(invoice) : null,
      invoice.pdf_url
        ? el(
            "div",
            { class: "button-row" },
            button(t("inv.pdf"), () => this.pdf(), { testid: "invoice-pdf" }),
          )
        : null,
    );
    this.root.replaceChildren(...parts.childNodes);
  }

  facts(invoice) {
    const rows = [
      ["inv.series", invoice.series_code || "–"],
      ["inv.number", el("span", { dataset: { testid: "detail-number" } }, invoice.number_text || t("inv.number_none"))],
      ["inv.issue_date", dateText(invoice.issue_date) || "–"],
      ["inv.period", periodText(invoice.billing_period, invoice.period_start) || "–"],
      ["inv.buyer", invoice.buyer_name],
      ["inv.buyer_code", invoice.buyer_code],
      ["inv.tax_code", invoice.buyer_tax_code || "–"],
      ["inv.address", invoice.buyer_address || "–"],
      ["inv.email", invoice.buyer_email || "–"],
      ["inv.subtotal", money(invoice.subtotal_vnd)],
      ["inv.vat", money(invoice.vat_vnd)],
      ["inv.total", el("span", { dataset: { testid: "detail-total" } }, money(invoice.total_vnd))],
    ];
    if (invoice.correction_reason) rows.push(["inv.reason", invoice.correction_reason]);
    if (invoice.delivery_channel) {
      const channel = t(`inv.channel_${invoice.delivery_channel}`);
      rows.push(["inv.delivered", `${channel} · ${whenText(invoice.delivered_at)}`]);
    }
    return el("dl", { class: "facts" }, ...rows.flatMap(([key, value]) => [el("dt", {}, t(key)), el("dd", {}, value)]));
  }

  lines(invoice) {
    return el(
      "div",
      { class: "table-scroll-x" },
      el("h3", {}, t("inv.lines")),
      el(
        "table",
        { class: "compact list lines", dataset: { testid: "invoice-lines" } },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...LINE_COLUMNS.map((key) =>
              el("th", { scope: "col", class: key === "inv.line_amount" ? "money" : null }, t(key)),
            ),
          ),
        ),
        el(
          "tbody",
          {},
          ...invoice.lines.map((line) =>
            el(
              "tr",
              {},
              el("td", {}, String(line.line_no)),
              el("td", {}, line.description),
              el("td", {}, `${Number(line.quantity).toLocaleString("vi-VN")} ${line.unit || ""}`),
              el("td", {}, line.vat_rate === "KCT" ? "KCT" : `${line.vat_rate}%`),
              el("td", { class: "money" }, money(line.amount_vnd)),
            ),
          ),
        ),
      ),
    );
  }

  related(invoice) {
    const items = [
      ...invoice.references.map((r) =>
        el(
          "li",
          { dataset: { testid: "invoice-reference", relation: r.relation } },
          el(
            "button",
            { type: "button", class: "link", onclick: () => this.onOpen(r.referenced_id) },
            t(`inv.ref_${r.relation}`, {
              series: `${r.template}${r.symbol}`,
              number: String(r.number).padStart(8, "0"),
              date: dateText(r.issue_date),
            }),
          ),
        ),
      ),
      ...invoice.corrected_by.map((c) =>
        el(
          "li",
          { dataset: { testid: "invoice-correction", relation: c.relation } },
          el(
            "button",
            { type: "button", class: "link", onclick: () => this.onOpen(c.invoice_id) },
            t(`inv.corrected_${c.relation}`, { id: c.invoice_id, status: tOr(`inv.status_${c.status}`, c.status) }),
          ),
        ),
      ),
    ];
    return items.length ? [el("h3", {}, t("inv.references")), el("ul", { class: "related" }, ...items)] : [];
  }

  records(invoice) {
    const parts = [];
    if (invoice.notices.length) {
      parts.push(
        el("h3", {}, t("inv.notices")),
        el(
          "ul",
          { class: "history", dataset: { testid: "invoice-notices" } },
          ...invoice.notices.map((n) =>
            el(
              "li",
              {},
              el("strong", {}, tOr(`inv.notice_${n.action}`, n.action)),
              ` · ${whenText(n.created_at)} · ${n.reason}`,
            ),
          ),
        ),
      );
    }
    if (invoice.agreements.length) {
      parts.push(
        el("h3", {}, t("inv.agreements")),
        el(
          "ul",
          { class: "history", dataset: { testid: "invoice-agreements" } },
          ...invoice.agreements.map((a) =>
            el("li", {}, t("inv.agreement_item", { file: a.filename, date: dateText(a.signed_on), who: a.signed_by })),
          ),
        ),
      );
    }
    if (invoice.einvoice_attempts.length) {
      parts.push(
        el("h3", {}, t("inv.attempts")),
        el(
          "ul",
          { class: "history" },
          ...invoice.einvoice_attempts.map((a) =>
            el("li", {}, [whenText(a.attempted_at), a.operation, a.outcome, a.detail].filter(Boolean).join(" · ")),
          ),
        ),
      );
    }
    return parts;
  }

  actions(invoice) {
    const box = el(
      "div",
      { class: "invoice-actions", dataset: { testid: "invoice-actions" } },
      el("h3", {}, t("inv.actions")),
    );
    const buttons = el("div", { class: "button-row" });
    box.append(buttons);
    const status = invoice.status;
    if (status === "draft") {
      buttons.append(
        button(t("inv.issue"), (b) => this.issue(b), { testid: "action-issue", className: "primary" }),
        button(t("inv.delete"), (b) => this.remove(b), { testid: "action-delete", className: "" }),
      );
      if (invoice.kind !== "original") box.append(this.agreementForm(invoice));
    }
    const withoutCode = (invoice.symbol || "C").startsWith("K");
    if (status === "issued" || (status === "sent" && !withoutCode)) {
      buttons.append(button(t("inv.requeue"), (b) => this.requeue(b), { testid: "action-requeue" }));
    }
    if (NUMBERED_LIVE.has(status) && invoice.kind === "original") {
      box.append(
        this.form("cancel", "inv.cancel", "inv.cancel_hint", [reasonField()], async (form) => {
          const cancelled = await invoicesApi.cancel(invoice.id, form.reason.value);
          toast(t("inv.cancelled"));
          return cancelled;
        }),
      );
    }
    if (CORRECTABLE.has(status)) {
      box.append(
        this.form("explain", "inv.explain", "inv.explain_hint", [reasonField()], async (form) => {
          await invoicesApi.explain(invoice.id, form.reason.value);
          toast(t("inv.explained"));
          return null;
        }),
        this.form("replace", "inv.replace", "inv.replace_hint", [reasonField(), ...buyerFields()], async (form) => {
          const buyer = {};
          for (const name of ["name", "tax_code", "address", "email"]) {
            const value = form[`buyer_${name}`].value.trim();
            if (value) buyer[name] = value;
          }
          const body = { reason: form.reason.value };
          if (Object.keys(buyer).length) body.buyer = buyer;
          const draft = await invoicesApi.replacement(invoice.id, body);
          toast(t("inv.replaced_draft", { id: draft.id }));
          return { open: draft.id };
        }),
        this.form("adjust", "inv.adjust", "inv.adjust_hint", adjustmentFields(invoice), async (form) => {
          const draft = await invoicesApi.adjustment({
            invoice_ids: [invoice.id],
            reason: form.reason.value,
            lines: [
              {
                service: form.service.value,
                description: form.description.value,
                amount_vnd: Number(form.amount.value),
                vat_rate: form.vat_rate.value,
              },
            ],
          });
          toast(t("inv.adjusted_draft", { id: draft.id }));
          return { open: draft.id };
        }),
      );
    }
    if (status === "coded" || (withoutCode && (status === "issued" || status === "sent"))) {
      const channel = el("select", { name: "channel" }, ...options(CHANNELS, (c) => t(`inv.channel_${c}`)));
      box.append(
        this.form("deliver", "inv.deliver", null, [field("inv.channel", channel)], async (form) => {
          const delivered = await invoicesApi.deliver(invoice.id, form.channel.value);
          toast(t("inv.delivered_done"));
          return delivered;
        }),
      );
    }
    return box;
  }

  /**
   * A folded form. ``submit(form)`` answers this invoice as it is now, null (read it again)
   * or ``{open: id}``: another invoice to show (a correction just drafted).
   */
  form(name, titleKey, hintKey, fields, submit) {
    const error = el("p", { class: "form-error", role: "alert" });
    const submitButton = el(
      "button",
      { type: "submit", class: "primary small", dataset: { testid: `${name}-submit` } },
      t("inv.submit"),
    );
    const form = el(
      "form",
      { class: "edit-form action-form", dataset: { testid: `${name}-form` }, novalidate: true },
      hintKey ? el("p", { class: "note wide" }, t(hintKey)) : null,
      ...fields,
      el("div", { class: "button-row" }, submitButton),
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      submitButton.disabled = true;
      error.textContent = "";
      try {
        const answer = await submit(form);
        if (answer && answer.open) {
          this.onChanged(null);
          this.onOpen(answer.open);
          return;
        }
        this.onChanged(answer);
        await this.reload();
      } catch (failure) {
        error.textContent = reasonOf(failure);
        submitButton.disabled = false;
      }
    });
    return el(
      "details",
      { class: "action", dataset: { testid: `action-${name}` } },
      el("summary", {}, t(titleKey)),
      form,
    );
  }

  agreementForm(invoice) {
    const file = el("input", { type: "file", name: "file", dataset: { testid: "agreement-file" } });
    const signedOn = el("input", { type: "date", name: "signed_on", required: true });
    const signedBy = el("input", { name: "signed_by", maxlength: 200, required: true });
    return this.form(
      "agreement",
      "inv.agreement",
      null,
      [
        field("inv.agreement_file", file),
        field("inv.agreement_signed_on", signedOn),
        field("inv.agreement_signed_by", signedBy),
      ],
      async () => {
        if (!file.files.length) throw new Error(`${t("inv.agreement_file")}?`);
        await uploadAgreement(invoice.id, file.files[0], signedOn.value, signedBy.value.trim());
        toast(t("inv.agreement_saved"));
        return null;
      },
    );
  }

  async issue(control) {
    if (!window.confirm(t("inv.issue_confirm"))) return;
    control.disabled = true;
    try {
      const issued = await invoicesApi.issue(this.invoice.id);
      toast(t("inv.issued_one", { series: issued.series_code, number: issued.number_text }));
      this.onChanged(issued);
      await this.reload();
    } catch (failure) {
      toast(`${t("inv.failed")}: ${reasonOf(failure)}`, "error");
      control.disabled = false;
    }
  }

  async pdf() {
    const invoice = this.invoice;
    const name = invoice.number_text ? `${invoice.series_code}-${invoice.number_text}` : `nhap-${invoice.id}`;
    try {
      await download(invoice.pdf_url, `hoa-don-${name}.pdf`);
    } catch (failure) {
      toast(`${t("inv.failed")}: ${reasonOf(failure)}`, "error");
    }
  }

  async requeue(control) {
    control.disabled = true;
    try {
      this.onChanged(await invoicesApi.requeue(this.invoice.id));
      toast(t("inv.requeued"));
    } catch (failure) {
      toast(`${t("inv.failed")}: ${reasonOf(failure)}`, "error");
    }
    control.disabled = false;
  }

  async remove(control) {
    if (!window.confirm(t("inv.delete_confirm"))) return;
    control.disabled = true;
    const removed = this.invoice.id;
    try {
      await invoicesApi.deleteDraft(removed);
      toast(t("inv.deleted"));
      this.clear();
      this.onChanged(null, removed);
    } catch (failure) {
      toast(`${t("inv.failed")}: ${reasonOf(failure)}`, "error");
      control.disabled = false;
    }
  }
}

function reasonField() {
  const reason = el("textarea", {
    name: "reason",
    rows: 2,
    maxlength: 2000,
    required: true,
    dataset: { testid: "reason" },
  });
  return el("label", { class: "stacked wide" }, el("span", {}, t("inv.reason")), reason);
}

function buyerFields() {
  return ["name", "tax_code", "address", "email"].map((name) =>
    field(`inv.buyer_${name}`, el("input", { name: `buyer_${name}`, autocomplete: "off" })),
  );
}

function adjustmentFields(invoice) {
  const first = invoice.lines[0] || {};
  const service = el("select", { name: "service" }, ...options(SERVICES, (s) => tOr(`cust.service_${s}`, s)));
  service.value = first.service || "collection";
  const vat = el("select", { name: "vat_rate" }, ...options(VAT_RATES, (r) => (r === "KCT" ? "KCT" : `${r}%`)));
  vat.value = first.vat_rate || "KCT";
  return [
    reasonField(),
    field("inv.adjust_description", el("input", { name: "description", maxlength: 500, required: true })),
    field("inv.adjust_amount", el("input", { name: "amount", type: "number", step: 1, required: true })),
    field("inv.adjust_service", service),
    field("inv.adjust_vat", vat),
  ];
}
