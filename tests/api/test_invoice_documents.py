"""Invoice PDFs, print batches, the collector's book, requeueing for the e-invoice provider
and the revenue report over HTTP, against the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io

import customers
import fleet
from accounts import Role
from storage import Pool
from tests.api.conftest import ApiUnderTest
from tests.api.test_invoice_corrections import issue, issue_run
from tests.api.test_invoice_routes import CLERK, Billed, adhoc_drafts, billed, error_of, other

__all__ = ["billed"]  # the fixture, used by name

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_an_invoice_reads_as_a_pdf_and_prints_are_counted(
    api: ApiUnderTest, billed: Billed, pool: Pool
) -> None:
    issued_id, draft_id = await adhoc_drafts(pool, billed, 2)
    await issue(api, issued_id)
    pdf = await api.get(f"/api/v1/invoices/{issued_id}/pdf", Role.CASHIER)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert "hoa-don-1C26TAA-00000001.pdf" in pdf.headers["content-disposition"]
    draft_pdf = await api.get(f"/api/v1/invoices/{draft_id}/pdf")
    assert draft_pdf.status_code == 200
    assert "hoa-don-nhap-" in draft_pdf.headers["content-disposition"]
    assert (await other(api, "GET", f"/api/v1/invoices/{issued_id}/pdf")).status_code == 404
    detail = (await api.get(f"/api/v1/invoices/{issued_id}")).json()
    assert detail["pdf_url"] == f"/api/v1/invoices/{issued_id}/pdf"

    path = "/api/v1/invoices/print"
    body = {"invoice_ids": [issued_id]}
    assert (await api.post(path, Role.DISPATCHER, json=body)).status_code == 403
    assert (await other(api, "POST", path, json=body)).status_code == 404
    drafts = await api.post(path, Role.ACCOUNTANT, json={"invoice_ids": [draft_id]})
    assert (drafts.status_code, error_of(drafts)["field"]) == (422, "invoice_ids")
    nothing = await api.post(path, Role.ACCOUNTANT, json={})
    assert (nothing.status_code, error_of(nothing)["field"]) == (422, "scope")
    first = await api.post(path, Role.ACCOUNTANT, json=body)
    assert first.status_code == 200, first.text
    assert first.content.startswith(b"%PDF")
    assert (first.headers["x-invoice-count"], first.headers["x-reprints"]) == ("1", "0")
    again = await api.post(path, Role.ACCOUNTANT, json=body)
    assert again.headers["x-reprints"] == "1"
    prints = (await api.get(f"/api/v1/invoices/{issued_id}/prints", Role.CASHIER)).json()
    assert [p["print_no"] for p in prints] == [1, 2]
    assert prints[1]["batch_id"] == int(again.headers["x-print-batch-id"])
    assert (await other(api, "GET", f"/api/v1/invoices/{issued_id}/prints")).status_code == 404


async def test_a_collectors_book_is_printed_for_a_period(
    api: ApiUnderTest, billed: Billed, pool: Pool
) -> None:
    await issue_run(api, billed)
    async with pool.connection() as conn:
        collector = await fleet.create_staff(
            conn, billed.tenant_id, "TG07", "Nguyễn Thị Thu", fleet.StaffRole.COLLECTOR
        )
        idle = await fleet.create_staff(
            conn, billed.tenant_id, "TG08", "Lê Văn Rảnh", fleet.StaffRole.COLLECTOR
        )
        await customers.move_points(
            conn,
            billed.tenant_id,
            CLERK,
            dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
            billed.point_ids,
            collector_staff_id=collector,
            today=dt.date(2026, 12, 1),
        )
    body = {"period_start": "2026-11-01"}
    path = f"/api/v1/collectors/{collector}/book/print"
    assert (await api.post(path, Role.CASHIER, json=body)).status_code == 403
    assert (await other(api, "POST", path, json=body)).status_code == 404
    empty = await api.post(f"/api/v1/collectors/{idle}/book/print", Role.ACCOUNTANT, json=body)
    assert (empty.status_code, error_of(empty)["field"]) == (422, "collector_staff_id")
    book = await api.post(path, Role.ACCOUNTANT, json=body)
    assert book.status_code == 200, book.text
    assert book.content.startswith(b"%PDF")
    assert "so-thu-" in book.headers["content-disposition"]
    area = await api.post(
        "/api/v1/invoices/print", Role.ADMIN, json={"collector_staff_id": collector}
    )
    assert (area.status_code, area.headers.get("x-invoice-count")) == (200, "3")


async def test_an_issued_invoice_is_sent_again_on_request(
    api: ApiUnderTest, billed: Billed, pool: Pool
) -> None:
    issued_id, draft_id = await adhoc_drafts(pool, billed, 2)
    await issue(api, issued_id)
    path = f"/api/v1/invoices/{issued_id}/requeue"
    assert (await api.post(path, Role.DISPATCHER)).status_code == 403
    assert (await other(api, "POST", path)).status_code == 404
    again = await api.post(path, Role.ACCOUNTANT)
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["send_attempts"]) == ("issued", 0)
    draft = await api.post(f"/api/v1/invoices/{draft_id}/requeue", Role.ACCOUNTANT)
    assert (draft.status_code, error_of(draft)["field"]) == (409, "invoice_id")


async def test_the_revenue_report_reads_as_json_and_as_a_workbook(
    api: ApiUnderTest, billed: Billed
) -> None:
    await issue_run(api, billed)
    december = {"date_from": "2026-12-01", "date_to": "2026-12-31"}
    report = await api.get(
        "/api/v1/billing/revenue", Role.ACCOUNTANT, params=december | {"group_by": "service"}
    )
    assert report.status_code == 200, report.text
    data = report.json()
    assert (data["basis"], data["group_by"]) == ("issue_date", ["service"])
    assert (data["total"]["amount_vnd"], data["total"]["vat_vnd"]) == (54_000, 4_320)
    assert data["total"]["invoices"] == 3
    assert [r["keys"] for r in data["rows"]] == [["collection"]]
    assert data["total"]["by_vat_rate"]["8"]["total_vnd"] == 58_320
    anonymous = await api.client.get("/api/v1/billing/revenue", params=december)
    assert anonymous.status_code == 401
    by_period = await api.get(
        "/api/v1/billing/revenue",
        Role.ADMIN,
        params={"date_from": "2026-11-01", "date_to": "2026-11-30", "basis": "service_period"},
    )
    assert by_period.json()["total"]["amount_vnd"] == 54_000
    assert (await other(api, "GET", "/api/v1/billing/revenue", params=december)).json()["total"][
        "amount_vnd"
    ] == 0
    assert (
        await api.get("/api/v1/billing/revenue", Role.CASHIER, params=december)
    ).status_code == 403
    for params, name in (
        ({"date_from": "2026-12-31", "date_to": "2026-12-01"}, "date_to"),
        ({"date_from": "2025-01-01", "date_to": "2026-12-31"}, "date_to"),
        (december | {"group_by": "weekday"}, "group_by[0]"),
        (december | {"basis": "paid"}, "basis"),
    ):
        bad = await api.get("/api/v1/billing/revenue", Role.ACCOUNTANT, params=params)
        assert (bad.status_code, error_of(bad)["field"]) == (422, name), params
    workbook = await api.get(
        "/api/v1/billing/revenue.xlsx",
        Role.ACCOUNTANT,
        params=december | {"group_by": ["area", "service"]},
    )
    assert workbook.status_code == 200, workbook.text
    assert workbook.headers["content-type"] == XLSX
    import openpyxl

    sheets = openpyxl.load_workbook(io.BytesIO(workbook.content)).sheetnames
    assert sheets == ["Doanh thu", "Thuế GTGT"]
