// The detail panel of one customer: its facts and edit form, its service points (with
// their own edit forms and the history of the terms they are billed on), its change
// requests and the form asking for one, and its audit history. An edit is sent with the
// revision it was made on: when someone else saved first, the panel says so and offers a
// reload instead of overwriting their change.

import { EDIT_ROLES, APPROVE_ROLES, book } from "./customers-api.js";
import { label, requestForm, requestItem } from "./customers-changes.js";
import { KINDS, statusBadge } from "./customers-search.js";
import { whenText } from "./format.js";
import { t, tOr } from "./i18n.js";
import { el, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);

const CUSTOMER_FIELDS = [
  ["name", "text"],
  ["kind", "kind"],
  ["phones", "phones"],
  ["email", "optional"],
  ["tax_code", "optional"],
  ["contact_name", "text"],
  ["billing_address", "text"],
  ["billing_period", "period"],
  ["billing_mode", "mode"],
];
const POINT_FIELDS = [
  ["address", "text"],
  ["street", "text"],
  ["ward", "text"],
  ["area_id", "area"],
  ["category", "text"],
  ["collector_staff_id", "staff"],
  ["cashier_staff_id", "staff"],
  ["route_code", "optional"],
];
const TERMS_COLUMNS = [
  "cust.valid_from",
  "cust.valid_to",
  "cust.status",
  "cust.class",
  "cust.field_so_khau",
  "cust.quantity",
];
const CHOICES = {
  kind: KINDS,
  period: ["monthly", "quarterly", "yearly"],
  mode: ["postpaid", "prepaid"],
};

export class DetailPanel {
  /**
   * @param {object} options
   * @param {string} options.role the signed-in person's role
   * @param {() => {areas: object[], staff: object[]}} options.lists areas and staff to choose from
   * @param {(point: object) => void} options.onLocate show a point on the map
   * @param {() => void} options.onChanged something was saved: refresh the table and map
   */
  constructor({ role, lists, onLocate, onChanged }) {
    this.role = role;
    this.canEdit = EDIT_ROLES.has(role);
    this.canDecide = APPROVE_ROLES.has(role);
    this.lists = lists;
    this.onLocate = onLocate;
    this.onChanged = onChanged;
    this.root = $("detail-panel");
    this.body = $("detail-body");
    this.customerId = null;
    this.pointId = null;
    this.data = null; // {customer, requests, history}
    this.openPoints = new Set();
    $("detail-close").addEventListener("click", () => this.close());
    $("detail-reload").addEventListener("click", () => this.reload());
  }

  async show(customerId, pointId = null) {
    this.customerId = customerId;
    this.pointId = pointId;
    this.openPoints = new Set(pointId ? [pointId] : []);
    await this.reload();
  }

  async showPoint(pointId) {
    try {
      const point = await book.point(pointId);
      await this.show(point.customer_id, point.id);
    } catch (failure) {
      toast(`${t("cust.load_failed")}: ${failure.reason || failure.message}`, "error");
    }
  }

  async reload() {
    if (this.customerId === null) return;
    const id = this.customerId;
    try {
      const [customer, requests, history] = await Promise.all([
        book.customer(id),
        book.requests({ customer_id: id, limit: 100 }),
        book.history(id),
      ]);
      if (id !== this.customerId) return; // another customer was chosen meanwhile
      this.data = { customer, requests, history };
    } catch (failure) {
      toast(`${t("cust.load_failed")}: ${failure.reason || failure.message}`, "error");
      return;
    }
    $("detail-stale").hidden = true;
    this.render();
  }

  close() {
    this.customerId = null;
    this.data = null;
    this.root.hidden = true;
    $("detail-hint").hidden = false;
  }

  render() {
    if (!this.data) return;
    const { customer, requests, history } = this.data;
    this.root.hidden = false;
    $("detail-hint").hidden = true;
    this.root.dataset.customerId = customer.id;
    $("detail-title").textContent = customer.name;
    this.body.replaceChildren(
      el(
        "p",
        { class: "subtitle" },
        `${customer.code} · ${t(`cust.kind_${customer.kind}`)} `,
        statusBadge(customer.status),
      ),
      this.customerSection(customer),
      el("h3", {}, t("cust.points", { n: customer.points.length })),
      ...customer.points.map((point) => this.pointSection(point)),
      el("h3", {}, t("cust.requests")),
      requests.length
        ? el(
            "ol",
            { class: "request-list", dataset: { testid: "customer-requests" } },
            ...requests.map((r) =>
              requestItem(r, {
                canDecide: this.canDecide,
                canCancel: this.canEdit,
                onDecide: (request, action, note) => this.decide(request, action, note),
              }),
            ),
          )
        : el("p", { class: "note" }, t("cust.requests_none")),
      this.canEdit
        ? el(
            "details",
            { class: "request-new", dataset: { testid: "request-new" } },
            el("summary", {}, t("cust.request_new")),
            requestForm(customer, { onSubmitted: () => this.afterChange() }),
          )
        : "",
      el("h3", {}, t("cust.history")),
      historyTable(history),
    );
  }

  // ---------------------------------------------------------- the customer

  customerSection(customer) {
    const form = editForm({
      testid: "customer-form",
      fields: CUSTOMER_FIELDS,
      record: customer,
      lists: this.lists(),
      disabled: !this.canEdit,
      save: (changes) => book.updateCustomer(customer.id, customer.revision, changes),
      onSaved: () => this.afterChange(),
      onStale: () => this.stale(),
    });
    return el("section", { class: "customer-facts" }, form);
  }

  // ---------------------------------------------------------- its service points

  pointSection(point) {
    const terms = el("div", { class: "terms", dataset: { testid: "terms" } });
    const details = el(
      "details",
      { class: "point", dataset: { testid: "point", pointId: point.id }, open: this.openPoints.has(point.id) },
      el(
        "summary",
        {},
        `${point.code} · ${point.address || point.ward || t("cust.no_address")} `,
        statusBadge(point.status),
        point.position_needs_fix ? el("span", { class: "badge needs-fix" }, t("cust.needs_fix")) : "",
      ),
      el(
        "dl",
        { class: "facts" },
        ...fact("cust.class", point.customer_class),
        ...fact("cust.field_so_khau", point.so_khau),
        ...fact("cust.field_volume_m3_per_month", point.volume_m3_per_month),
        ...fact("cust.field_weight_kg_per_month", point.weight_kg_per_month),
        ...fact("cust.field_services", (point.services || []).map((s) => tOr(`cust.service_${s}`, s)).join(", ")),
        ...fact("cust.collector", this.staffName(point.collector_staff_id)),
        ...fact("cust.book_order", point.book_order),
        ...fact("cust.position", positionText(point)),
      ),
      el("button", { type: "button", class: "small", onclick: () => this.onLocate(point) }, t("cust.show_on_map")),
      editForm({
        testid: "point-form",
        fields: POINT_FIELDS,
        record: point,
        lists: this.lists(),
        disabled: !this.canEdit,
        save: (changes) => book.updatePoint(point.id, point.revision, changes),
        onSaved: () => this.afterChange(),
        onStale: () => this.stale(),
      }),
      el("h4", {}, t("cust.terms")),
      terms,
    );
    const loadTerms = async () => {
      if (terms.dataset.loaded) return;
      terms.dataset.loaded = "1";
      try {
        terms.replaceChildren(termsTable(await book.terms(point.id)));
      } catch (failure) {
        delete terms.dataset.loaded;
        terms.replaceChildren(el("p", { class: "form-error" }, failure.reason || failure.message));
      }
    };
    details.addEventListener("toggle", () => {
      if (details.open) {
        this.openPoints.add(point.id);
        loadTerms();
      } else this.openPoints.delete(point.id);
    });
    if (details.open) loadTerms();
    return details;
  }

  staffName(id) {
    if (id === null || id === undefined) return "–";
    const person = this.lists().staff.find((p) => p.id === id);
    return person ? person.full_name : `#${id}`;
  }

  // ---------------------------------------------------------- changes

  async decide(request, action, note) {
    await book.decide(request.id, action, note);
    toast(t(`cust.decided_${action}`, { id: request.id }));
    await this.afterChange();
  }

  async afterChange() {
    await this.reload();
    this.onChanged();
  }

  stale() {
    $("detail-stale").hidden = false;
    $("detail-reload").focus();
  }

  relabel() {
    this.render();
  }
}

function fact(key, value) {
  const shown = value === null || value === undefined || value === "" ? "–" : String(value);
  return [el("dt", {}, t(key)), el("dd", {}, shown)];
}

function positionText(point) {
  const source = tOr(`cust.source_${point.position_source}`, point.position_source);
  return `${point.lat.toFixed(5)}, ${point.lon.toFixed(5)} (${source})`;
}

/** A form over ``fields`` of ``record``; only the fields changed are sent. */
function editForm({ testid, fields, record, lists, disabled, save, onSaved, onStale }) {
  const controls = new Map();
  for (const [name, type] of fields) controls.set(name, control(name, type, record[name], lists, disabled));
  const error = el("p", { class: "form-error", role: "alert", dataset: { testid: `${testid}-error` } });
  const form = el(
    "form",
    { class: "edit-form", dataset: { testid }, novalidate: true },
    ...[...controls].map(([name, input]) => label(`cust.field_${name}`, input)),
    error,
    disabled
      ? ""
      : el(
          "div",
          { class: "button-row" },
          el("button", { type: "submit", class: "primary", dataset: { testid: `${testid}-save` } }, t("cust.save")),
        ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = {};
    for (const [name, type] of fields) {
      const value = readControl(type, controls.get(name));
      if (!sameValue(value, record[name])) changes[name] = value;
    }
    error.textContent = "";
    for (const input of controls.values()) input.removeAttribute("aria-invalid");
    if (Object.keys(changes).length === 0) {
      toast(t("cust.nothing_changed"));
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      await save(changes);
      toast(t("cust.saved"));
      await onSaved();
    } catch (failure) {
      if (failure.status === 409 && failure.field === "revision") {
        error.textContent = t("cust.stale_short");
        onStale();
      } else {
        const field = failure.field && controls.has(failure.field) ? failure.field : null;
        if (field) controls.get(field).setAttribute("aria-invalid", "true");
        error.textContent = field
          ? `${t(`cust.field_${field}`)}: ${failure.reason}`
          : failure.reason || failure.message;
      }
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function control(name, type, value, lists, disabled) {
  const attributes = { name, disabled, dataset: { field: name } };
  if (CHOICES[type]) {
    const options = CHOICES[type].map((v) => el("option", { value: v }, t(`cust.${type}_${v}`)));
    const select = el("select", attributes, ...options);
    select.value = value;
    return select;
  }
  if (type === "area" || type === "staff") {
    const options =
      type === "area"
        ? lists.areas.map((a) => [a.id, `${a.code} · ${a.name}`])
        : lists.staff.map((p) => [p.id, p.full_name]);
    // One the list does not hold (another's staff member, for a cashier): by its id.
    if (value !== null && value !== undefined && !options.some(([id]) => id === value)) {
      options.push([value, `#${value}`]);
    }
    const select = el(
      "select",
      attributes,
      el("option", { value: "" }, "–"),
      ...options.map(([id, text]) => el("option", { value: id }, text)),
    );
    select.value = value === null || value === undefined ? "" : String(value);
    return select;
  }
  const shownValue = type === "phones" ? (value || []).join(", ") : value ?? "";
  return el("input", { ...attributes, value: shownValue, autocomplete: "off" });
}

function readControl(type, input) {
  const text = input.value.trim();
  if (type === "phones") return text.split(/[,;]/).map((p) => p.trim()).filter(Boolean);
  if (type === "optional") return text === "" ? null : text;
  if (type === "area" || type === "staff") return text === "" ? null : Number(text);
  return type === "text" ? text : input.value;
}

function sameValue(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function termsTable(terms) {
  if (!terms.length) return el("p", { class: "note" }, t("cust.terms_none"));
  return el("div", { class: "table-scroll-x" }, termsRows(terms));
}

function termsRows(terms) {
  return el(
    "table",
    { class: "compact list terms-table" },
    el(
      "thead",
      {},
      el("tr", {}, ...TERMS_COLUMNS.map((k) => el("th", { scope: "col" }, t(k)))),
    ),
    el(
      "tbody",
      {},
      ...terms
        .slice()
        .reverse()
        .map((row) =>
          el(
            "tr",
            { dataset: { testid: "terms-row" } },
            el("td", {}, row.valid_from),
            el("td", {}, row.valid_to || t("cust.open_ended")),
            el("td", {}, statusBadge(row.status)),
            el("td", {}, row.customer_class),
            el("td", {}, row.so_khau ?? "–"),
            el("td", {}, quantity(row)),
          ),
        ),
    ),
  );
}

function quantity(row) {
  if (row.volume_m3_per_month !== null) return `${row.volume_m3_per_month} m³`;
  if (row.weight_kg_per_month !== null) return `${row.weight_kg_per_month} kg`;
  if (row.contract_price_vnd !== null) return `${row.contract_price_vnd} ₫`;
  return "–";
}

function historyTable(entries) {
  if (!entries.length) return el("p", { class: "note" }, t("cust.history_none"));
  return el(
    "ol",
    { class: "history", dataset: { testid: "history" } },
    ...entries.map((entry) =>
      el(
        "li",
        { dataset: { testid: "history-entry", seq: entry.seq, action: entry.action } },
        el(
          "div",
          { class: "history-head" },
          el("time", { datetime: entry.at }, whenText(entry.at)),
          " · ",
          el("strong", {}, entry.actor),
          " · ",
          tOr(`cust.action_${entry.action}`, entry.action),
          " ",
          el("span", { class: "note" }, `${tOr(`cust.entity_${entry.entity}`, entry.entity)} ${entry.entity_id}`),
        ),
        historyChanges(entry),
      ),
    ),
  );
}

/** What changed; a created object's many fields folded away behind their count. */
function historyChanges(entry) {
  const lines = changeLines(entry.before, entry.after);
  const list = el("ul", { class: "diff" }, ...lines);
  if (entry.before !== null || lines.length <= 3) return list;
  return el("details", {}, el("summary", { class: "note" }, t("cust.fields_n", { n: lines.length })), list);
}

function changeLines(before, after) {
  const names = new Set([...Object.keys(before || {}), ...Object.keys(after || {})]);
  const lines = [];
  for (const name of names) {
    const from = before ? before[name] : undefined;
    const to = after ? after[name] : undefined;
    if (before && after && sameValue(from, to)) continue;
    lines.push(
      el(
        "li",
        {},
        el("span", { class: "field-name" }, tOr(`cust.field_${name}`, name)),
        ": ",
        before && from !== undefined ? `${text(from)} → ` : "",
        el("strong", {}, text(to)),
      ),
    );
  }
  return lines.slice(0, 30);
}

function text(value) {
  if (value === null || value === undefined || value === "") return "–";
  if (Array.isArray(value)) return value.map(text).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  // 105.77895000000001 is the float's noise, not the stored position: 12 digits are plenty.
  if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(12)));
  return String(value);
}
