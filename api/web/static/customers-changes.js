// Change requests: the form that asks for one (field, new value, effective date, reason,
// evidence), a request as a list item, and the approvals list where another person
// approves or rejects it. The server keeps the four eyes: nobody decides their own.

import { book, downloadEvidence, uploadEvidence } from "./customers-api.js";
import { STATUSES } from "./customers-search.js";
import { localDate, whenText } from "./format.js";
import { t, tOr } from "./i18n.js";
import { el, toast } from "./ui.js";

// What a change request may change, and how the typed value is sent.
export const REQUEST_FIELDS = {
  so_khau: "integer",
  volume_m3_per_month: "decimal",
  weight_kg_per_month: "decimal",
  container_lifts_per_month: "integer",
  contract_price_vnd: "integer",
  customer_class: "text",
  status: "status",
  services: "list",
  exemption_pct: "integer",
  exemption_reason: "text",
};

function typedValue(field, raw) {
  const text = raw.trim();
  switch (REQUEST_FIELDS[field]) {
    case "integer":
      return text === "" ? null : /^-?\d+$/.test(text) ? Number(text) : text;
    case "decimal":
      return text === "" ? null : text.replace(",", ".");
    case "list":
      return text
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    default:
      return text;
  }
}

function shown(value) {
  if (value === null || value === undefined || value === "") return "–";
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** "Số khẩu: 3 → 4" per changed field. */
export function diffLines(diff) {
  return Object.entries(diff || {}).map(([field, change]) => {
    const from = change && typeof change === "object" && "from" in change ? change.from : undefined;
    const to = change && typeof change === "object" && "to" in change ? change.to : change;
    return el(
      "li",
      { dataset: { field } },
      el("span", { class: "field-name" }, tOr(`cust.field_${field}`, field)),
      ": ",
      from === undefined ? "" : `${shown(from)} → `,
      el("strong", {}, shown(to)),
    );
  });
}

/**
 * One change request as a list item.
 * @param {object} request
 * @param {object} options
 * @param {boolean} options.canDecide approve and reject buttons (the server still refuses one's own)
 * @param {boolean} options.canCancel
 * @param {(request: object, action: string, note: string) => Promise<void>} options.onDecide
 * @param {(customerId: number) => void} [options.onOpen] open the customer
 */
export function requestItem(request, { canDecide, canCancel, onDecide, onOpen }) {
  const item = el("li", {
    class: `request status-${request.status}`,
    dataset: { testid: "change-request", requestId: request.id, status: request.status },
  });
  const who = request.customer_name ? `${request.customer_name}` : `#${request.customer_id}`;
  const heading = el(
    "div",
    { class: "request-head" },
    el("span", { class: `badge request-${request.status}` }, tOr(`cust.request_${request.status}`, request.status)),
    " ",
    onOpen
      ? el("button", { type: "button", class: "link", onclick: () => onOpen(request.customer_id) }, who)
      : el("span", {}, t("cust.request_n", { id: request.id })),
  );
  item.append(
    heading,
    el("ul", { class: "diff" }, ...diffLines(request.diff)),
    el(
      "p",
      { class: "note" },
      t("cust.request_meta", {
        date: request.effective_date,
        when: whenText(request.submitted_at),
        who: request.submitted_by_name || request.submitted_by || request.submitted_via || "",
      }),
    ),
    el("p", { class: "reason" }, request.reason || ""),
  );
  if (request.decision_note) {
    item.append(el("p", { class: "note" }, `${t("cust.decision_note")}: ${request.decision_note}`));
  }
  if (request.conflict) {
    const conflict = `${t("cust.conflict")}: ${request.conflict}`;
    item.append(el("p", { class: "form-error", dataset: { testid: "request-conflict" } }, conflict));
  }
  for (const evidence of request.evidence || []) {
    item.append(
      el(
        "button",
        {
          type: "button",
          class: "link evidence",
          onclick: () => downloadEvidence(request.id, evidence).catch((e) => toast(e.reason || e.message, "error")),
        },
        `📎 ${evidence.filename}`,
      ),
    );
  }
  // An approval blocked by a change made meanwhile may still be rejected, to close it.
  const blocked = request.status === "approved" && Boolean(request.conflict);
  const pending = request.status === "pending";
  if ((pending && (canDecide || canCancel)) || (blocked && canDecide)) {
    const note = el("input", {
      name: "note",
      maxlength: 2000,
      "aria-label": t("cust.decision_note"),
      placeholder: t("cust.decision_note"),
    });
    const error = el("p", { class: "form-error", role: "alert" });
    const act = (action) => async (event) => {
      const buttons = item.querySelectorAll("button");
      for (const button of buttons) button.disabled = true;
      error.textContent = "";
      try {
        await onDecide(request, action, note.value.trim());
      } catch (failure) {
        error.textContent = failure.reason || failure.message;
        event.target.focus();
      } finally {
        for (const button of buttons) button.disabled = false;
      }
    };
    const button = (action, key, classes = "small") =>
      el(
        "button",
        { type: "button", class: classes, dataset: { testid: `${action}-button` }, onclick: act(action) },
        t(key),
      );
    const buttons = [];
    if (canDecide && pending) buttons.push(button("approve", "cust.approve", "small primary"));
    if (canDecide) buttons.push(button("reject", "cust.reject"));
    if (canCancel && pending) buttons.push(button("cancel", "cust.cancel_request"));
    item.append(el("div", { class: "decision" }, note, el("div", { class: "button-row" }, ...buttons)), error);
  }
  return item;
}

/** The requests waiting for a decision: the pending ones, and approved ones that could
 * not apply (a person rejects them or the field comes back as it was). */
export class ApprovalsPanel {
  constructor({ canDecide, canCancel, onOpen, onDecided }) {
    this.canDecide = canDecide;
    this.canCancel = canCancel;
    this.onOpen = onOpen;
    this.onDecided = onDecided;
    this.list = document.getElementById("approvals-list");
    this.empty = document.getElementById("approvals-empty");
    this.requests = [];
    document.getElementById("approvals-reload").addEventListener("click", () => this.load());
  }

  async load() {
    try {
      const [pending, approved] = await Promise.all([
        book.requests({ status: "pending", limit: 200 }),
        book.requests({ status: "approved", limit: 200 }),
      ]);
      // Approved ones wait for their day, unless a change made meanwhile blocks them.
      this.requests = [...approved.filter((r) => r.conflict), ...pending];
    } catch (failure) {
      toast(`${t("cust.load_failed")}: ${failure.reason || failure.message}`, "error");
      return;
    }
    this.render();
  }

  render() {
    this.empty.hidden = this.requests.length > 0;
    this.list.replaceChildren(
      ...this.requests.map((request) =>
        requestItem(request, {
          canDecide: this.canDecide,
          canCancel: this.canCancel,
          onOpen: this.onOpen,
          onDecide: (r, action, note) => this.decide(r, action, note),
        }),
      ),
    );
  }

  async decide(request, action, note) {
    const decided = await book.decide(request.id, action, note);
    toast(t(`cust.decided_${action}`, { id: request.id }));
    await this.load();
    this.onDecided(decided);
  }

  relabel() {
    this.render();
  }
}

/**
 * The form asking for a change: which point (or the whole customer), which field, the
 * new value, from when, why, and a file as evidence.
 */
export function requestForm(customer, { onSubmitted }) {
  const pointSelect = el(
    "select",
    { name: "service_point_id", dataset: { testid: "request-point" } },
    ...customer.points.map((p) => el("option", { value: p.id }, `${p.code} · ${p.address || p.ward || ""}`)),
  );
  const fieldSelect = el(
    "select",
    { name: "field", dataset: { testid: "request-field" } },
    ...Object.keys(REQUEST_FIELDS).map((f) => el("option", { value: f }, tOr(`cust.field_${f}`, f))),
  );
  const valueBox = el("span", { class: "value-box" });
  const renderValue = () => {
    const field = fieldSelect.value;
    const input =
      REQUEST_FIELDS[field] === "status"
        ? el("select", { name: "value" }, ...STATUSES.map((s) => el("option", { value: s }, t(`cust.status_${s}`))))
        : el("input", {
            name: "value",
            required: true,
            autocomplete: "off",
            inputmode: ["text", "list"].includes(REQUEST_FIELDS[field]) ? "text" : "decimal",
          });
    input.dataset.testid = "request-value";
    valueBox.replaceChildren(input);
  };
  fieldSelect.addEventListener("change", renderValue);
  renderValue();
  const error = el("p", { class: "form-error", role: "alert", dataset: { testid: "request-error" } });
  const form = el(
    "form",
    { class: "edit-form request-form", dataset: { testid: "request-form" }, novalidate: true },
    label("cust.request_point", pointSelect),
    label("cust.request_field", fieldSelect),
    label("cust.request_value", valueBox),
    label(
      "cust.effective_date",
      el("input", {
        type: "date",
        name: "effective_date",
        value: localDate(),
        required: true,
        dataset: { testid: "request-date" },
      }),
    ),
    label(
      "cust.reason",
      el("textarea", {
        name: "reason",
        rows: 2,
        maxlength: 2000,
        required: true,
        dataset: { testid: "request-reason" },
      }),
    ),
    label("cust.evidence", el("input", { type: "file", name: "evidence", dataset: { testid: "request-evidence" } })),
    error,
    el(
      "div",
      { class: "button-row" },
      el(
        "button",
        { type: "submit", class: "primary", dataset: { testid: "request-submit" } },
        t("cust.request_submit"),
      ),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const field = String(data.get("field"));
    const reason = String(data.get("reason") || "").trim();
    if (!reason) {
      error.textContent = t("cust.reason_required");
      form.elements.reason.focus();
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    error.textContent = "";
    try {
      const created = await book.submit({
        customer_id: customer.id,
        service_point_id: Number(data.get("service_point_id")) || null,
        changes: { [field]: typedValue(field, String(data.get("value") ?? "")) },
        reason,
        effective_date: String(data.get("effective_date")),
      });
      const file = form.elements.evidence.files[0];
      if (file) {
        try {
          await uploadEvidence(created.id, file);
        } catch (failure) {
          toast(`${t("cust.evidence_failed")}: ${failure.reason || failure.message}`, "error");
        }
      }
      toast(t("cust.request_sent", { id: created.id }));
      form.reset();
      renderValue();
      form.elements.effective_date.value = localDate();
      await onSubmitted(created);
    } catch (failure) {
      error.textContent = failure.field
        ? `${tOr(`cust.field_${failure.field}`, failure.field)}: ${failure.reason}`
        : failure.reason || failure.message;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** A form row: its label's words above the control. */
export function label(key, control) {
  return el("label", { class: "stacked" }, el("span", {}, t(key)), control);
}
