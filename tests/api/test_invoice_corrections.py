"""Correcting invoices over HTTP against the real PostgreSQL: cancel and bill again, a
replacement and an adjustment with their references, the buyer's agreement, notices,
delivery, adjustment proposals and ad-hoc invoices; roles and tenants as everywhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

from accounts import Role
from billing.charge_runs import recompute_charges
from customers.terms import change_terms_from
from storage import Pool
from tests.api.conftest import ApiUnderTest
from tests.api.test_invoice_routes import (
    Billed,
    adhoc_drafts,
    billed,
    drafts,
    error_of,
    other,
    run_november,
)

__all__ = ["billed"]  # the fixture, used by name

TODAY = dt.date(2026, 12, 4)
NOW = dt.datetime(2026, 12, 4, 3, 0, tzinfo=dt.UTC)


async def issue_run(api: ApiUnderTest, billed: Billed) -> list[dict[str, Any]]:
    """Run November and issue its drafts: numbers 1.. in id order."""
    run = await run_november(api, billed)
    answer = await api.post(
        "/api/v1/invoices/issue", Role.ACCOUNTANT, json={"billing_run_id": run["id"]}
    )
    assert answer.status_code == 200, answer.text
    listed = await api.get("/api/v1/invoices", params={"billing_run_id": run["id"]})
    return sorted(listed.json(), key=lambda i: i["id"])


async def issue(api: ApiUnderTest, invoice_id: int) -> dict[str, Any]:
    answer = await api.post(f"/api/v1/invoices/{invoice_id}/issue", Role.ACCOUNTANT)
    assert answer.status_code == 200, answer.text
    issued: dict[str, Any] = answer.json()
    return issued


async def detail(api: ApiUnderTest, invoice_id: int) -> dict[str, Any]:
    answer = await api.get(f"/api/v1/invoices/{invoice_id}", Role.CASHIER)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_a_cancelled_invoice_is_billed_again_on_a_new_number(
    api: ApiUnderTest, billed: Billed
) -> None:
    invoices = await issue_run(api, billed)
    assert [i["number"] for i in invoices] == [1, 2, 3]
    wrong = invoices[0]
    path = f"/api/v1/invoices/{wrong['id']}/cancel"
    assert (await other(api, "POST", path, json={"reason": "Sai"})).status_code == 404
    assert (await api.post(path, Role.DISPATCHER, json={"reason": "Sai"})).status_code == 403
    for reason in ("", "   "):
        empty = await api.post(path, Role.ACCOUNTANT, json={"reason": reason})
        assert (empty.status_code, error_of(empty)["field"]) == (422, "reason"), reason
    cancelled = await api.post(path, Role.ACCOUNTANT, json={"reason": "Sai số khẩu"})
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["number"]) == ("cancelled", 1)
    notices = (await detail(api, wrong["id"]))["notices"]
    assert [(n["action"], n["reason"]) for n in notices] == [("cancel", "Sai số khẩu")]
    again = await api.post(path, Role.ACCOUNTANT, json={"reason": "Sai"})
    assert (again.status_code, error_of(again)["field"]) == (409, "invoice_id")

    rerun = await run_november(api, billed)
    assert (rerun["invoices_drafted"], rerun["charges_invoiced"]) == (1, 2)
    (redrafted,) = await drafts(api)
    assert redrafted["customer_id"] == wrong["customer_id"]
    assert redrafted["total_vnd"] == wrong["total_vnd"]
    draft_cancel = await api.post(
        f"/api/v1/invoices/{redrafted['id']}/cancel", Role.ACCOUNTANT, json={"reason": "x"}
    )
    assert draft_cancel.status_code == 409
    assert "delete it instead" in error_of(draft_cancel)["reason"]
    assert (await issue(api, redrafted["id"]))["number"] == 4  # never 1 again


async def test_a_replacement_and_an_adjustment_refer_to_what_they_correct(
    api: ApiUnderTest, billed: Billed, pool: Pool
) -> None:
    first, second = await adhoc_drafts(pool, billed, 2, amount_vnd=100_000)
    assert [(await issue(api, i))["number"] for i in (first, second)] == [1, 2]

    path = f"/api/v1/invoices/{first}/replacement"
    body = {"reason": "Sai tên người mua", "buyer": {"name": "Nguyễn Thị Hoa"}}
    assert (await other(api, "POST", path, json=body)).status_code == 404
    assert (await api.post(path, Role.DISPATCHER, json=body)).status_code == 403
    bad = await api.post(path, Role.ACCOUNTANT, json=body | {"buyer": {"tax_code": "12"}})
    assert (bad.status_code, error_of(bad)["field"]) == (422, "buyer.tax_code")
    drafted = await api.post(path, Role.ACCOUNTANT, json=body)
    assert drafted.status_code == 201, drafted.text
    replacement = drafted.json()
    assert (replacement["kind"], replacement["status"]) == ("replacement", "draft")
    assert replacement["buyer_name"] == "Nguyễn Thị Hoa"
    assert replacement["correction_reason"] == "Sai tên người mua"
    assert [line["amount_vnd"] for line in replacement["lines"]] == [100_000]
    assert replacement["references"] == [
        {
            "referenced_id": first,
            "relation": "replaces",
            "template": "1",
            "symbol": "C26TAA",
            "number": 1,
            "issue_date": "2026-12-04",
        }
    ]
    twice = await api.post(path, Role.ACCOUNTANT, json=body)
    assert (twice.status_code, error_of(twice)["field"]) == (409, "invoice_id")
    corrected = (await detail(api, first))["corrected_by"]
    assert [(c["invoice_id"], c["relation"], c["status"]) for c in corrected] == [
        (replacement["id"], "replaces", "draft")
    ]
    assert (await issue(api, replacement["id"]))["number"] == 3
    assert (await detail(api, first))["status"] == "replaced"

    adjustment_body = {
        "invoice_ids": [second],
        "reason": "Tính trùng một lượt",
        "lines": [
            {
                "service": "extra",
                "description": "Điều giảm thu gom bổ sung",
                "amount_vnd": -40_000,
                "vat_rate": "8",
            }
        ],
    }
    assert (
        await other(api, "POST", "/api/v1/invoice-adjustments", json=adjustment_body)
    ).status_code == 404
    no_amount = adjustment_body | {
        "lines": [{"service": "extra", "description": "x", "vat_rate": "8"}]
    }
    refused = await api.post("/api/v1/invoice-adjustments", Role.ADMIN, json=no_amount)
    assert refused.status_code == 422
    assert error_of(refused)["field"] == "lines[0]"
    assert "amount_vnd" in error_of(refused)["reason"]
    made = await api.post("/api/v1/invoice-adjustments", Role.ACCOUNTANT, json=adjustment_body)
    assert made.status_code == 201, made.text
    adjustment = made.json()
    assert (adjustment["kind"], adjustment["subtotal_vnd"], adjustment["vat_vnd"]) == (
        "adjustment",
        -40_000,
        -3_200,
    )
    assert [(r["relation"], r["number"]) for r in adjustment["references"]] == [("adjusts", 2)]

    # The buyer's signed agreement, kept with the correction (its file never read back here).
    agreement_path = f"/api/v1/invoices/{adjustment['id']}/agreement"
    query = {"filename": "bien-ban.pdf", "signed_on": "2026-12-03", "signed_by": "Ông Trần Văn B"}
    pdf = b"%PDF-1.4 bien ban"
    headers = api.a.auth(Role.ACCOUNTANT) | {"Content-Type": "application/pdf"}
    for params, name in (
        (query | {"signed_on": "2026-02-30"}, "signed_on"),
        ({k: v for k, v in query.items() if k != "signed_by"}, "signed_by"),
        (query | {"filename": "../x.pdf"}, "filename"),
    ):
        bad_upload = await api.client.post(
            agreement_path, params=params, content=pdf, headers=headers
        )
        assert (bad_upload.status_code, error_of(bad_upload)["field"]) == (422, name), params
    empty = await api.client.post(
        agreement_path, params=query, content=b"", headers=api.a.auth(Role.ACCOUNTANT)
    )
    assert (empty.status_code, error_of(empty)["field"]) == (422, "body")
    on_original = await api.client.post(
        f"/api/v1/invoices/{second}/agreement", params=query, content=pdf, headers=headers
    )
    assert (on_original.status_code, error_of(on_original)["field"]) == (422, "invoice_id")
    b_headers = api.b.auth(Role.ADMIN) | {"Content-Type": "application/pdf"}
    by_b = await api.client.post(agreement_path, params=query, content=pdf, headers=b_headers)
    assert by_b.status_code == 404
    kept = await api.client.post(agreement_path, params=query, content=pdf, headers=headers)
    assert kept.status_code == 201, kept.text
    assert len(kept.json()["sha256"]) == 64
    (listed,) = (await detail(api, adjustment["id"]))["agreements"]
    assert (listed["filename"], listed["signed_by"], listed["size_bytes"]) == (
        "bien-ban.pdf",
        "Ông Trần Văn B",
        len(pdf),
    )
    assert "content" not in listed

    assert (await issue(api, adjustment["id"]))["number"] == 4
    original = await detail(api, second)
    assert original["status"] == "adjusted"
    assert [(c["invoice_id"], c["relation"]) for c in original["corrected_by"]] == [
        (adjustment["id"], "adjusts")
    ]
    explained = await api.post(
        f"/api/v1/invoices/{second}/explain", Role.ACCOUNTANT, json={"reason": "Sai địa chỉ"}
    )
    assert explained.status_code == 201, explained.text
    notices = (await detail(api, second))["notices"]
    assert [n["action"] for n in notices] == ["adjust", "explain"]
    assert notices[0]["correcting_id"] == adjustment["id"]


async def test_delivery_waits_for_the_code_of_a_coded_series(
    api: ApiUnderTest, billed: Billed, pool: Pool
) -> None:
    (with_code,) = await adhoc_drafts(pool, billed, 1)
    await issue(api, with_code)
    early = await api.post(
        f"/api/v1/invoices/{with_code}/deliver", Role.ACCOUNTANT, json={"channel": "handover"}
    )
    assert (early.status_code, error_of(early)["field"]) == (409, "invoice_id")

    created = await api.post("/api/v1/invoice-series", Role.ACCOUNTANT, json={"symbol": "K26TBB"})
    series_k = created.json()["id"]
    adhoc = {
        "customer_id": billed.customer_ids[1],
        "series_id": series_k,
        "note": "Khách gọi điện",
        "lines": [
            {
                "service": "hazardous",
                "description": "Thu gom pin cũ",
                "unit": "kg",
                "quantity": "2.5",
                "unit_price_vnd": "20000",
                "vat_rate": "10",
            }
        ],
    }
    made = await api.post("/api/v1/invoices/adhoc", Role.ACCOUNTANT, json=adhoc)
    assert made.status_code == 201, made.text
    assert (made.json()["origin"], made.json()["total_vnd"]) == ("adhoc", 55_000)
    path = f"/api/v1/invoices/{made.json()['id']}/deliver"
    await issue(api, made.json()["id"])
    fax = await api.post(path, Role.ACCOUNTANT, json={"channel": "fax"})
    assert (fax.status_code, error_of(fax)["field"]) == (422, "channel")
    no_email = await api.post(path, Role.ACCOUNTANT, json={"channel": "email"})
    assert (no_email.status_code, error_of(no_email)["field"]) == (422, "channel")
    assert (await other(api, "POST", path, json={"channel": "handover"})).status_code == 404
    delivered = await api.post(path, Role.ACCOUNTANT, json={"channel": "handover"})
    assert delivered.status_code == 200, delivered.text
    assert (delivered.json()["status"], delivered.json()["delivery_channel"]) == (
        "delivered",
        "handover",
    )
    late = await api.post(
        f"/api/v1/invoices/{made.json()['id']}/cancel", Role.ACCOUNTANT, json={"reason": "x"}
    )
    assert late.status_code == 409
    assert "after delivery" in error_of(late)["reason"]


async def test_adhoc_invoices_are_checked_and_kept_to_their_company(
    api: ApiUnderTest, billed: Billed
) -> None:
    line = {"service": "extra", "description": "Thu gom xà bần", "amount_vnd": 250_000}
    body = {
        "customer_id": billed.customer_ids[0],
        "series_id": billed.series_id,
        "lines": [line | {"vat_rate": "8"}],
    }
    assert (await api.post("/api/v1/invoices/adhoc", Role.DISPATCHER, json=body)).status_code == 403
    assert (await other(api, "POST", "/api/v1/invoices/adhoc", json=body)).status_code == 404
    for lines, name in (
        ([line | {"vat_rate": "7"}], "lines[0].vat_rate"),
        ([line | {"vat_rate": "8", "service": "cleaning"}], "lines[0].service"),
        ([line | {"vat_rate": "8", "amount_vnd": -5}], "lines[0].amount_vnd"),
        ([], "lines"),
    ):
        bad = await api.post(
            "/api/v1/invoices/adhoc", Role.ACCOUNTANT, json=body | {"lines": lines}
        )
        assert (bad.status_code, error_of(bad)["field"]) == (422, name), lines
    stranger = await api.post(
        "/api/v1/invoices/adhoc",
        Role.ACCOUNTANT,
        json=body | {"lines": [line | {"vat_rate": "8", "service_point_id": 2**62}]},
    )
    assert (stranger.status_code, error_of(stranger)["field"]) == (422, "lines[0].service_point_id")
    made = await api.post("/api/v1/invoices/adhoc", Role.ACCOUNTANT, json=body)
    assert made.status_code == 201, made.text
    assert (made.json()["status"], made.json()["total_vnd"]) == ("draft", 270_000)
    # Ids beyond bigint are refused as any other wrong id, never a server error.
    for huge in (
        body | {"series_id": 2**70},
        body | {"lines": [line | {"vat_rate": "8", "service_point_id": 2**70}]},
    ):
        answer = await api.post("/api/v1/invoices/adhoc", Role.ACCOUNTANT, json=huge)
        assert answer.status_code in (404, 422), answer.text
    beyond = await api.post(
        "/api/v1/invoice-adjustments",
        Role.ACCOUNTANT,
        json={"invoice_ids": [2**70], "reason": "x", "lines": body["lines"]},
    )
    assert beyond.status_code in (404, 422), beyond.text


async def test_proposals_are_accepted_into_adjustments_or_dismissed(
    api: ApiUnderTest, billed: Billed, pool: Pool
) -> None:
    await issue_run(api, billed)
    # From 16 November the first household has 2 persons more, the second 1 less.
    async with pool.connection() as conn:
        for point, persons in zip(billed.point_ids[:2], (4, 2), strict=True):
            await change_terms_from(
                conn,
                billed.tenant_id,
                point,
                dt.date(2026, 11, 16),
                {"so_khau": persons},
                today=TODAY,
            )
        await recompute_charges(
            conn, billed.tenant_id, billed.point_ids[:2], dt.date(2026, 11, 16), now=NOW
        )
    listed = await api.get("/api/v1/adjustment-proposals", Role.CASHIER)
    assert listed.status_code == 200, listed.text
    proposals = {p["service_point_id"]: p for p in listed.json()}
    up, down = proposals[billed.point_ids[0]], proposals[billed.point_ids[1]]
    assert (up["invoiced_amount_vnd"], up["recomputed_amount_vnd"], up["difference_vnd"]) == (
        12_000,
        18_000,
        6_000,
    )
    assert down["difference_vnd"] == -3_000
    assert up["customer_code"].startswith("HGD-")
    assert (await other(api, "GET", "/api/v1/adjustment-proposals")).json() == []

    accept = {"proposal_ids": [up["id"]], "reason": "Tăng số khẩu từ 16/11"}
    assert (
        await other(api, "POST", "/api/v1/adjustment-proposals/accept", json=accept)
    ).status_code == 404
    dismiss_b = await other(
        api, "POST", "/api/v1/adjustment-proposals/dismiss", json={"proposal_ids": [down["id"]]}
    )
    assert dismiss_b.status_code == 404
    assert (
        await api.post("/api/v1/adjustment-proposals/accept", Role.DISPATCHER, json=accept)
    ).status_code == 403
    no_reason = await api.post(
        "/api/v1/adjustment-proposals/accept", Role.ACCOUNTANT, json={"proposal_ids": [up["id"]]}
    )
    assert (no_reason.status_code, error_of(no_reason)["field"]) == (422, "reason")
    accepted = await api.post("/api/v1/adjustment-proposals/accept", Role.ACCOUNTANT, json=accept)
    assert accepted.status_code == 201, accepted.text
    (drafted,) = accepted.json()["adjustment_invoices"]
    assert (drafted["kind"], drafted["status"], drafted["subtotal_vnd"]) == (
        "adjustment",
        "draft",
        6_000,
    )
    references = (await detail(api, drafted["id"]))["references"]
    assert [(r["relation"], r["referenced_id"]) for r in references] == [
        ("adjusts", up["invoice_id"])
    ]
    twice = await api.post("/api/v1/adjustment-proposals/accept", Role.ACCOUNTANT, json=accept)
    assert (twice.status_code, error_of(twice)["field"]) == (409, "proposal_ids")

    dismiss = "/api/v1/adjustment-proposals/dismiss"
    mixed = await api.post(dismiss, Role.ACCOUNTANT, json={"proposal_ids": [down["id"], up["id"]]})
    assert mixed.status_code == 404  # the accepted one is not open: nothing dismissed
    dismissed = await api.post(dismiss, Role.ACCOUNTANT, json={"proposal_ids": [down["id"]]})
    assert dismissed.json() == {"dismissed": 1}
    # Drafted, the accepted one stays proposed until its adjustment is issued.
    still = await api.get("/api/v1/adjustment-proposals")
    assert [(p["id"], p["adjustment_invoice_id"]) for p in still.json()] == [
        (up["id"], drafted["id"])
    ]
    gone = await api.get("/api/v1/adjustment-proposals", params={"status": "dismissed"})
    assert [p["id"] for p in gone.json()] == [down["id"]]
    bad = await api.get("/api/v1/adjustment-proposals", params={"status": "open"})
    assert (bad.status_code, error_of(bad)["field"]) == (422, "status")
