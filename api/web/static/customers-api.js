// The customer book's endpoints, as the customer pages call them; evidence files go up as
// the request body itself and come down as a download, both with the bearer token.

import { ApiError, forgetToken, get, post, query, request, token } from "./api.js";

const BASE = "/api/v1";

/** What a role may not see reads as nothing (a cashier has no staff list, for one). */
export function forbiddenIsEmpty(error) {
  if (error instanceof ApiError && error.status === 403) return [];
  throw error;
}

// Who may do what, as the server decides it (api/auth.py, api/routes_customers.py): the
// page only leaves out what would be refused.
export const OPERATIONS_ROLES = new Set(["admin", "dispatcher", "accountant"]);
export const BOOK_ROLES = new Set(["admin", "dispatcher", "accountant", "cashier"]);
export const EDIT_ROLES = new Set(["admin", "accountant"]);
export const APPROVE_ROLES = new Set(["admin", "accountant"]);

export const book = {
  search: (params, signal) => get(`${BASE}/customers?${query(params)}`, { signal }),
  customer: (id) => get(`${BASE}/customers/${id}`),
  updateCustomer: (id, revision, changes) =>
    request("PATCH", `${BASE}/customers/${id}`, { revision, changes }),
  point: (id) => get(`${BASE}/service-points/${id}`),
  updatePoint: (id, revision, changes) =>
    request("PATCH", `${BASE}/service-points/${id}`, { revision, changes }),
  terms: (pointId) => get(`${BASE}/service-points/${pointId}/terms`),
  history: (customerId) => get(`${BASE}/customers/${customerId}/history?limit=200`),
  areas: () => get(`${BASE}/areas`),
  staff: () => get(`${BASE}/staff`).catch(forbiddenIsEmpty),
  map: (params, signal) => get(`${BASE}/customer-map?${query(params)}`, { signal }),
  requests: (params) => get(`${BASE}/change-requests?${query(params)}`),
  changeRequest: (id) => get(`${BASE}/change-requests/${id}`),
  submit: (body) => post(`${BASE}/change-requests`, body),
  decide: (id, action, note) => post(`${BASE}/change-requests/${id}/${action}`, { note }),
};

export async function failure(response) {
  const data = await response.json().catch(() => null);
  const detail = (data && data.error) || {};
  if (response.status === 401) {
    forgetToken();
    location.reload();
  }
  return new ApiError(response.status, detail.field ?? null, detail.reason ?? null, { body: data });
}

/** Attach ``file`` (a File from an <input type=file>) to change request ``requestId``. */
export function uploadEvidence(requestId, file) {
  return upload(`${BASE}/change-requests/${requestId}/evidence`, file);
}

/** POST ``file`` as the request's body to ``path`` (its name in ``filename``); the JSON answer. */
export async function upload(path, file) {
  let response;
  try {
    response = await fetch(`${path}?${query({ filename: file.name })}`, {
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

/** Download an evidence file: fetched with the token, saved under its own name. */
export async function downloadEvidence(requestId, evidence) {
  const response = await fetch(`${BASE}/change-requests/${requestId}/evidence/${evidence.id}`, {
    headers: { Authorization: `Bearer ${token() || ""}` },
    cache: "no-store",
  });
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = evidence.filename || "evidence";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
