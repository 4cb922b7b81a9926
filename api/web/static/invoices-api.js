// The invoice endpoints as the invoices page calls them, who may do what (as the server
// decides it: api/routes_invoices.py), and how money, dates and statuses read on the page.

import { ApiError, get, post, query, request, token } from "./api.js";
import { failure } from "./customers-api.js";
import { t, tOr } from "./i18n.js";
import { el } from "./ui.js";

const BASE = "/api/v1";

export const READ_ROLES = new Set(["admin", "accountant", "dispatcher", "cashier"]);
export const WRITE_ROLES = new Set(["admin", "accountant"]);
export const OPERATIONS_ROLES = new Set(["admin", "dispatcher", "accountant"]);

export const STATUSES = ["draft", "issued", "sent", "coded", "delivered", "cancelled", "adjusted", "replaced"];
export const PERIOD_KINDS = ["monthly", "quarterly", "yearly"];
export const VAT_RATES = ["KCT", "0", "5", "8", "10"];
export const SERVICES = ["collection", "recycling", "hazardous", "extra", "container_rental"];
export const CHANNELS = ["handover", "print", "email", "portal"];
export const TEMPLATES = ["1", "2", "5", "6"];

export const invoicesApi = {
  seller: () => get(`${BASE}/billing/seller`),
  saveSeller: (body) => request("PUT", `${BASE}/billing/seller`, body),
  series: () => get(`${BASE}/invoice-series`),
  createSeries: (body) => post(`${BASE}/invoice-series`, body),
  updateSeries: (id, changes) => request("PATCH", `${BASE}/invoice-series/${id}`, changes),
  runs: () => get(`${BASE}/billing-runs?limit=20`),
  run: (body) => post(`${BASE}/billing-runs`, body),
  periodState: (kind, start) => get(`${BASE}/billing-periods/${kind}/${start}`),
  closePeriod: (kind, start) => post(`${BASE}/billing-periods/${kind}/${start}/close`),
  list: (params, signal) => get(`${BASE}/invoices?${query(params)}`, { signal }),
  invoice: (id) => get(`${BASE}/invoices/${id}`),
  issue: (id) => post(`${BASE}/invoices/${id}/issue`),
  issueBatch: (body) => post(`${BASE}/invoices/issue`, body),
  deleteDraft: (id) => request("DELETE", `${BASE}/invoices/${id}`),
  cancel: (id, reason) => post(`${BASE}/invoices/${id}/cancel`, { reason }),
  explain: (id, reason) => post(`${BASE}/invoices/${id}/explain`, { reason }),
  replacement: (id, body) => post(`${BASE}/invoices/${id}/replacement`, body),
  adjustment: (body) => post(`${BASE}/invoice-adjustments`, body),
  deliver: (id, channel) => post(`${BASE}/invoices/${id}/deliver`, { channel }),
  requeue: (id) => post(`${BASE}/invoices/${id}/requeue`),
  proposals: () => get(`${BASE}/adjustment-proposals`),
  accept: (ids, reason) => post(`${BASE}/adjustment-proposals/accept`, { proposal_ids: ids, reason }),
  dismiss: (ids) => post(`${BASE}/adjustment-proposals/dismiss`, { proposal_ids: ids }),
  areas: () => get(`${BASE}/areas`),
  staff: () => get(`${BASE}/staff`),
  mapConfig: () => get(`${BASE}/map/config`),
  me: () => get(`${BASE}/me`),
};

/** Keep the buyer's signed agreement (a File) with correction ``invoiceId``. */
export async function uploadAgreement(invoiceId, file, signedOn, signedBy) {
  const params = query({ filename: file.name, signed_on: signedOn, signed_by: signedBy });
  let response;
  try {
    response = await fetch(`${BASE}/invoices/${invoiceId}/agreement?${params}`, {
      method: "POST",
      headers: {
        Accept: "application/json",
        Authorization: `Bearer ${token() || ""}`,
        "Content-Type": file.type || "application/octet-stream",
      },
      body: file,
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, null, String(error.message || error));
  }
  if (!response.ok) throw await failure(response);
  return response.json();
}

/**
 * Fetch a file with the token and save it under ``filename``; with ``body``, POSTed as
 * JSON (a print batch, a collector's book). The response, for its headers.
 */
export async function download(path, filename, body = undefined) {
  const headers = { Authorization: `Bearer ${token() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, null, String(error.message || error));
  }
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return response;
}

/** Print the issued invoices of a scope as one PDF (every print recorded). */
export function printInvoices(scope) {
  return download(`${BASE}/invoices/print`, "in-hoa-don.pdf", scope);
}

/** The collector's printed book for the period starting ``periodStart``. */
export function printCollectorBook(staffId, periodStart) {
  return download(`${BASE}/collectors/${staffId}/book/print`, `so-thu-${periodStart}.pdf`, {
    period_start: periodStart,
  });
}

// ---------------------------------------------------------------- how things read

/** Whole đồng with dots between thousands: "1.234.567 ₫", "-36.000 ₫". */
export function money(vnd) {
  if (vnd === null || vnd === undefined) return "–";
  const whole = Math.trunc(Number(vnd));
  const digits = String(Math.abs(whole)).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
  return `${whole < 0 ? "-" : ""}${digits} ₫`;
}

/** "2026-06-01" as "01/06/2026"; "" for none. */
export function dateText(iso) {
  if (!iso) return "";
  const [y, m, d] = String(iso).slice(0, 10).split("-");
  return `${d}/${m}/${y}`;
}

/** The period an invoice bills: "06/2026", "Quý 2/2026", "2026". */
export function periodText(kind, start) {
  if (!start) return "";
  const [y, m] = start.split("-");
  if (kind === "quarterly") return `${t("inv.period_quarterly")} ${Math.floor((Number(m) - 1) / 3) + 1}/${y}`;
  if (kind === "yearly") return y;
  return `${m}/${y}`;
}

/** The number as printed (eight digits), or a note that it has none yet. */
export function numberText(invoice) {
  return invoice.number_text || "";
}

export function statusBadge(status) {
  return el(
    "span",
    { class: `badge invoice-${status}`, dataset: { testid: "invoice-status", status } },
    tOr(`inv.status_${status}`, status),
  );
}

/** The first day "YYYY-MM-01" of an <input type="month"> value, or null. */
export function monthStart(value) {
  return /^\d{4}-\d{2}$/.test(value || "") ? `${value}-01` : null;
}

/** A labelled control in a form: <label class="stacked"><span>…</span>control</label>. */
export function field(labelKey, control) {
  return el("label", { class: "stacked" }, el("span", {}, t(labelKey)), control);
}

/** A button running ``onclick(theButton)``; a test id and other classes optional. */
export function button(label, onclick, { testid = null, className = "small" } = {}) {
  return el(
    "button",
    {
      type: "button",
      class: className,
      dataset: testid ? { testid } : undefined,
      onclick: (event) => onclick(event.currentTarget),
    },
    label,
  );
}

/** <option>s of ``values``, each labelled ``label(value)``. */
export function options(values, label) {
  return values.map((value) => el("option", { value }, label(value)));
}

/** The server's reason for a refusal, with its field. */
export function reasonOf(error) {
  const reason = error.reason || error.message || String(error);
  return error.field ? `${error.field}: ${reason}` : reason;
}
