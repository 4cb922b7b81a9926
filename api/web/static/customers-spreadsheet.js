// The book as a spreadsheet: "Xuất Excel" downloads it (the import's columns, Vietnamese
// headers); "Nhập từ tệp" sends a CSV or XLSX and shows what came of each row.

import { token } from "./api.js";
import { failure, upload } from "./customers-api.js";
import { t } from "./i18n.js";
import { el, toast } from "./ui.js";

const BASE = "/api/v1/customers";
const SHOWN_REJECTIONS = 20;

async function exportBook(button) {
  button.disabled = true;
  try {
    const response = await fetch(`${BASE}/export?format=xlsx`, {
      headers: { Authorization: `Bearer ${token() || ""}` },
      cache: "no-store",
    });
    if (!response.ok) throw await failure(response);
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: name ? name[1] : "so-khach-hang.xlsx" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (error) {
    toast(`${t("cust.export_failed")}: ${error.reason || error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

function showReport(box, report) {
  box.replaceChildren(
    el("p", { class: "import-summary" }, t("cust.import_done", {
      created: report.rows_created,
      updated: report.rows_updated,
      unchanged: report.rows_unchanged,
      rejected: report.rows_rejected,
    })),
  );
  if (report.rejections.length) {
    const list = el("ul", { class: "import-rejections" });
    for (const r of report.rejections.slice(0, SHOWN_REJECTIONS)) {
      list.append(el("li", {}, t("cust.import_row", {
        row: r.row,
        column: r.column || "—",
        value: r.value ?? "",
        reason: r.reason,
      })));
    }
    if (report.rows_rejected > SHOWN_REJECTIONS) {
      list.append(el("li", {}, t("cust.import_more", { count: report.rows_rejected - SHOWN_REJECTIONS })));
    }
    box.append(list);
  }
  box.hidden = false;
}

async function importFile(input, box, onImported) {
  const file = input.files && input.files[0];
  input.value = "";
  if (!file) return;
  box.replaceChildren(el("p", {}, t("cust.importing", { name: file.name })));
  box.hidden = false;
  try {
    showReport(box, await upload(`${BASE}/import`, file));
    onImported();
  } catch (error) {
    box.replaceChildren(el("p", { class: "form-error" }, `${t("cust.import_failed")}: ${error.reason || error.message}`));
  }
}

/** Wire the export button for everyone who reads the book, the import for editors. */
export function setupSpreadsheets({ canImport, onImported }) {
  const exportButton = document.getElementById("export-xlsx");
  const importButton = document.getElementById("import-button");
  const input = document.getElementById("import-file");
  const box = document.getElementById("import-report");
  exportButton.addEventListener("click", () => exportBook(exportButton));
  importButton.hidden = !canImport;
  importButton.addEventListener("click", () => input.click());
  input.addEventListener("change", () => importFile(input, box, onImported));
}
