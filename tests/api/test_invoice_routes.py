"""The invoice endpoints against the real PostgreSQL: the seller and series, billing runs
and periods, the list and detail, issuing one, many at once and a batch, deleting drafts;
who may do what, and another company's objects answering 404."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import accounts
import audit
import billing
from accounts import Role
from api import routes_invoice_issuing
from storage import Pool
from tests.api.conftest import ApiUnderTest, TenantWorld
from tests.billing.cases import HANOI_URBAN
from tests.billing.invoice_support import SELLER
from tests.billing.test_charge_runs import add_point, tariff

CLERK = audit.Actor("ketoan")
SETUP_AT = dt.datetime(2026, 11, 1, 1, 0, tzinfo=dt.UTC)
NOVEMBER = "2026-11-01"
RUN = {"billing_period": "monthly", "period_start": NOVEMBER}


@dataclass
class Billed:
    """Tenant a ready to invoice: its seller, an urban household tariff (6,000 per person
    a month, VAT 8 %), series 1C26TAA and households of 2, 3 and 4 persons."""

    world: TenantWorld
    series_id: int
    point_ids: list[int]
    customer_ids: list[int]

    @property
    def tenant_id(self) -> int:
        return self.world.tenant_id


async def make_billed(
    pool: Pool, world: TenantWorld, persons: tuple[int, ...] = (2, 3, 4)
) -> Billed:
    async with pool.connection() as conn:
        # the fixture's own point has no số khẩu: it is not billed here
        await conn.execute(
            "DELETE FROM service_point_terms WHERE service_point_id = %s", (world.service_point_id,)
        )
        await billing.set_seller(conn, world.tenant_id, SELLER)
        await billing.create_tariff_version(
            conn, world.tenant_id, CLERK, SETUP_AT, tariff("HN-HH", HANOI_URBAN, vat_rate="8")
        )
        series = await billing.create_series(
            conn,
            world.tenant_id,
            CLERK,
            SETUP_AT,
            billing.NewSeries(symbol="C26TAA", name="Phí VS"),
        )
        points = [
            await add_point(conn, world.tenant_id, f"HGD-{n}", so_khau=count)
            for n, count in enumerate(persons)
        ]
        cursor = await conn.execute(
            "SELECT customer_id FROM service_points WHERE id = ANY(%s) ORDER BY id", (points,)
        )
        customer_ids = [row[0] for row in await cursor.fetchall()]
    return Billed(world, series.id, points, customer_ids)


async def adhoc_drafts(
    pool: Pool, billed: Billed, count: int, amount_vnd: int = 50_000
) -> list[int]:
    line = billing.NewLine(
        service="extra", description="Thu gom bổ sung", amount_vnd=amount_vnd, vat_rate="8"
    )
    new = billing.NewAdhocInvoice(
        customer_id=billed.customer_ids[0], series_id=billed.series_id, lines=[line]
    )
    async with pool.connection() as conn:
        return [
            await billing.create_adhoc_invoice(conn, billed.tenant_id, CLERK, SETUP_AT, new)
            for _ in range(count)
        ]


@pytest.fixture
async def billed(api: ApiUnderTest, pool: Pool) -> Billed:
    return await make_billed(pool, api.a)


async def other(api: ApiUnderTest, method: str, path: str, **kw: Any) -> httpx.Response:
    """The same request by tenant b's admin."""
    return await api.client.request(method, path, headers=api.b.auth(Role.ADMIN), **kw)


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


async def run_november(api: ApiUnderTest, billed: Billed) -> dict[str, Any]:
    answer = await api.post(
        "/api/v1/billing-runs", Role.ACCOUNTANT, json=RUN | {"series_id": billed.series_id}
    )
    assert answer.status_code == 201, answer.text
    run: dict[str, Any] = answer.json()
    return run


async def drafts(api: ApiUnderTest, **params: Any) -> list[dict[str, Any]]:
    answer = await api.get(
        "/api/v1/invoices", Role.ACCOUNTANT, params={"status": "draft", **params}
    )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


# ---------------------------------------------------------------- seller and series


async def test_the_seller_is_the_companys_own_and_checked(api: ApiUnderTest) -> None:
    assert (await api.get("/api/v1/billing/seller", Role.CASHIER)).json() is None
    body = SELLER.as_json()
    refused = await api.client.put(
        "/api/v1/billing/seller", json=body, headers=api.a.auth(Role.DISPATCHER)
    )
    assert refused.status_code == 403
    bad = await api.client.put(
        "/api/v1/billing/seller",
        json=body | {"tax_code": "01001"},
        headers=api.a.auth(Role.ACCOUNTANT),
    )
    assert bad.status_code == 422
    assert error_of(bad)["field"] == "tax_code"
    unknown = await api.client.put(
        "/api/v1/billing/seller", json=body | {"logo": "x"}, headers=api.a.auth(Role.ADMIN)
    )
    assert (unknown.status_code, error_of(unknown)["field"]) == (422, "logo")
    saved = await api.client.put(
        "/api/v1/billing/seller", json=body, headers=api.a.auth(Role.ACCOUNTANT)
    )
    assert saved.status_code == 200, saved.text
    assert (await api.get("/api/v1/billing/seller", Role.CASHIER)).json() == body
    assert (await other(api, "GET", "/api/v1/billing/seller")).json() is None
    assert (await api.get("/api/v1/billing/seller", Role.COLLECTOR)).status_code == 403


async def test_series_are_created_listed_and_kept_to_their_company(api: ApiUnderTest) -> None:
    created = await api.post(
        "/api/v1/invoice-series", Role.ACCOUNTANT, json={"symbol": "C26TAA", "name": "Phí VS"}
    )
    assert created.status_code == 201, created.text
    series = created.json()
    assert (series["code"], series["used"], series["issued_count"]) == ("1C26TAA", False, 0)
    again = await api.post("/api/v1/invoice-series", Role.ADMIN, json={"symbol": "C26TAA"})
    assert (again.status_code, error_of(again)["field"]) == (409, "symbol")
    bad = await api.post("/api/v1/invoice-series", Role.ADMIN, json={"symbol": "C26XAA"})
    assert (bad.status_code, error_of(bad)["field"]) == (422, "symbol")
    bad_template = await api.post(
        "/api/v1/invoice-series", Role.ADMIN, json={"symbol": "C26TAB", "template": "3"}
    )
    assert (bad_template.status_code, error_of(bad_template)["field"]) == (422, "template")
    refused = await api.post("/api/v1/invoice-series", Role.DISPATCHER, json={"symbol": "C26TAB"})
    assert refused.status_code == 403
    listed = await api.get("/api/v1/invoice-series", Role.CASHIER)
    assert [s["code"] for s in listed.json()] == ["1C26TAA"]
    # Unused: everything may change.
    renamed = await api.client.patch(
        f"/api/v1/invoice-series/{series['id']}",
        json={"symbol": "C26TAB", "name": "Thu phí"},
        headers=api.a.auth(Role.ACCOUNTANT),
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["code"] == "1C26TAB"
    assert (await other(api, "GET", "/api/v1/invoice-series")).json() == []
    for method, kw in (("GET", {}), ("PATCH", {"json": {"active": False}})):
        answer = await other(api, method, f"/api/v1/invoice-series/{series['id']}", **kw)
        assert answer.status_code == 404, (method, answer.text)
    huge = await api.get("/api/v1/invoice-series/99999999999999999999")
    assert (huge.status_code, error_of(huge)["field"]) == (422, "series_id")


# ---------------------------------------------------------------- runs, issuing, periods


async def test_a_run_drafts_the_period_and_issuing_numbers_it_then_the_series_is_locked(
    api: ApiUnderTest, billed: Billed
) -> None:
    body = RUN | {"series_id": billed.series_id}
    assert (await api.post("/api/v1/billing-runs", Role.DISPATCHER, json=body)).status_code == 403
    wrong_day = await api.post(
        "/api/v1/billing-runs", Role.ACCOUNTANT, json=body | {"period_start": "2026-11-02"}
    )
    assert (wrong_day.status_code, error_of(wrong_day)["field"]) == (422, "period_start")
    wrong_kind = await api.post(
        "/api/v1/billing-runs", Role.ACCOUNTANT, json=body | {"billing_period": "weekly"}
    )
    assert (wrong_kind.status_code, error_of(wrong_kind)["field"]) == (422, "billing_period")
    # tenant b has no seller nor series of its own; a's series is not b's
    b_run = await other(api, "POST", "/api/v1/billing-runs", json=body)
    assert b_run.status_code == 404, b_run.text

    run = await run_november(api, billed)
    # 2, 3 and 4 persons at 6,000, each line plus 8 % VAT
    assert (run["invoices_drafted"], run["drafts_replaced"]) == (3, 0)
    assert run["total_vnd"] == 54_000 + 4_320
    assert (run["period_start"], run["period_end"]) == (NOVEMBER, "2026-12-01")
    runs = (await api.get("/api/v1/billing-runs", Role.CASHIER)).json()
    assert [r["id"] for r in runs] == [run["id"]]
    assert (await other(api, "GET", "/api/v1/billing-runs")).json() == []

    drafted = await drafts(api, billing_run_id=run["id"])
    assert sorted(d["total_vnd"] for d in drafted) == [12_960, 19_440, 25_920]
    assert {d["status"] for d in drafted} == {"draft"}
    assert all(d["number"] is None and d["series_code"] is None for d in drafted)
    assert (await other(api, "GET", "/api/v1/invoices")).json() == []
    first = min(drafted, key=lambda d: d["total_vnd"])
    detail = (await api.get(f"/api/v1/invoices/{first['id']}", Role.CASHIER)).json()
    (line,) = detail["lines"]
    assert (line["amount_vnd"], line["vat_vnd"], line["quantity"]) == (12_000, 960, "2.000")
    assert "tháng 11/2026" in line["description"]
    assert detail["references"] == detail["notices"] == detail["agreements"] == []
    assert (await other(api, "GET", f"/api/v1/invoices/{first['id']}")).status_code == 404

    issue = f"/api/v1/invoices/{first['id']}/issue"
    assert (await api.post(issue, Role.DISPATCHER)).status_code == 403
    assert (await api.post(issue, Role.CASHIER)).status_code == 403
    assert (await other(api, "POST", issue)).status_code == 404
    issued = await api.post(issue, Role.ACCOUNTANT)
    assert issued.status_code == 200, issued.text
    numbered = issued.json()
    assert (numbered["status"], numbered["number"], numbered["number_text"]) == (
        "issued",
        1,
        "00000001",
    )
    assert (numbered["series_code"], numbered["issue_date"]) == ("1C26TAA", "2026-12-04")
    twice = await api.post(issue, Role.ACCOUNTANT)
    assert (twice.status_code, error_of(twice)["field"]) == (409, "invoice_id")

    # Used: the series keeps its symbol, template and name; it may be retired.
    series_path = f"/api/v1/invoice-series/{billed.series_id}"
    for change in ({"symbol": "C26TAB"}, {"name": "Khác"}, {"template": "2"}):
        refused = await api.client.patch(series_path, json=change, headers=api.a.auth(Role.ADMIN))
        assert refused.status_code == 409, change
        assert error_of(refused)["field"] == next(iter(change))
        assert "is used" in error_of(refused)["reason"]
    series = (await api.get(series_path)).json()
    assert (series["used"], series["issued_count"], series["next_number"]) == (True, 1, 2)

    state_path = f"/api/v1/billing-periods/monthly/{NOVEMBER}"
    state = (await api.get(state_path, Role.CASHIER)).json()
    assert (state["status"], state["drafts"], state["issued"]) == ("open", 2, 1)
    early = await api.post(f"{state_path}/close", Role.ACCOUNTANT)
    assert (early.status_code, error_of(early)["field"]) == (409, "period_start")
    batch = await api.post(
        "/api/v1/invoices/issue", Role.ACCOUNTANT, json={"billing_run_id": run["id"]}
    )
    assert batch.status_code == 200, batch.text
    assert batch.json() == {
        "issued": 2,
        "total_vnd": 19_440 + 25_920,
        "series": [{"series": "1C26TAA", "count": 2, "first_number": 2, "last_number": 3}],
    }
    closed = await api.post(f"{state_path}/close", Role.ACCOUNTANT)
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["issued"]) == ("closed", 3)
    locked = await api.post("/api/v1/billing-runs", Role.ACCOUNTANT, json=body)
    assert (locked.status_code, error_of(locked)["field"]) == (409, "period_start")
    bad_state = await api.get("/api/v1/billing-periods/monthly/2026-11-05")
    assert (bad_state.status_code, error_of(bad_state)["field"]) == (422, "period_start")
    retired = await api.client.patch(
        series_path, json={"active": False}, headers=api.a.auth(Role.ACCOUNTANT)
    )
    assert retired.json()["active"] is False


async def test_a_hundred_concurrent_issues_get_numbers_1_to_100(
    api: ApiUnderTest, billed: Billed, pool: Pool
) -> None:
    ids = await adhoc_drafts(pool, billed, 100)
    answers = await asyncio.gather(
        *(api.post(f"/api/v1/invoices/{i}/issue", Role.ACCOUNTANT) for i in ids)
    )
    assert [a.status_code for a in answers] == [200] * 100, [a.text for a in answers][:3]
    assert sorted(a.json()["number"] for a in answers) == list(range(1, 101))
    assert {a.json()["series_code"] for a in answers} == {"1C26TAA"}
    series = (await api.get(f"/api/v1/invoice-series/{billed.series_id}")).json()
    assert series["next_number"] == 101


async def test_a_batch_issues_in_id_order_chunk_by_chunk(
    api: ApiUnderTest, billed: Billed, pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_invoice_issuing, "ISSUE_CHUNK", 2)
    ids = await adhoc_drafts(pool, billed, 10, amount_vnd=10_000)
    path = "/api/v1/invoices/issue"
    for body in ({}, {"invoice_ids": ids[:1], "billing_run_id": 1}):
        both = await api.post(path, Role.ACCOUNTANT, json=body)
        assert (both.status_code, error_of(both)["field"]) == (422, "invoice_ids"), body
    empty = await api.post(path, Role.ACCOUNTANT, json={"invoice_ids": []})
    assert (empty.status_code, error_of(empty)["field"]) == (422, "invoice_ids")
    assert (await api.post(path, Role.DISPATCHER, json={"invoice_ids": ids})).status_code == 403
    assert (await other(api, "POST", path, json={"invoice_ids": ids})).status_code == 404
    missing_run = await api.post(path, Role.ACCOUNTANT, json={"billing_run_id": 123_456})
    assert missing_run.status_code == 404

    # Given in any order, issued in id order: ids[4] gets 1, ids[0] gets 5.
    answer = await api.post(
        path,
        Role.ACCOUNTANT,
        json={"invoice_ids": [ids[4], ids[3], ids[2], ids[1], ids[0], ids[4]]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "issued": 5,
        "total_vnd": 5 * 10_800,
        "series": [{"series": "1C26TAA", "count": 5, "first_number": 1, "last_number": 5}],
    }
    numbers = {
        i["id"]: i["number"]
        for i in (await api.get("/api/v1/invoices", params={"status": "issued"})).json()
    }
    assert [numbers[i] for i in ids[:5]] == [1, 2, 3, 4, 5]

    # The second chunk meets an issued invoice: the first chunk stays issued.
    single = await api.post(f"/api/v1/invoices/{ids[9]}/issue", Role.ACCOUNTANT)
    assert single.json()["number"] == 6
    partial = await api.post(path, Role.ACCOUNTANT, json={"invoice_ids": ids[7:]})
    assert partial.status_code == 409, partial.text
    error = error_of(partial)
    assert error["field"] == "invoice_id"
    assert "the 2 invoices before it were issued" in error["reason"]
    assert error["issued"]["series"] == [
        {"series": "1C26TAA", "count": 2, "first_number": 7, "last_number": 8}
    ]
    # A refused first chunk issues nothing.
    refused = await api.post(path, Role.ACCOUNTANT, json={"invoice_ids": [ids[6], ids[0]]})
    assert (refused.status_code, error_of(refused)["field"]) == (409, "invoice_id")
    assert "issued" not in error_of(refused)
    assert sorted(d["id"] for d in await drafts(api)) == [ids[5], ids[6]]


async def test_a_draft_is_deleted_an_issued_invoice_stays(
    api: ApiUnderTest, billed: Billed, pool: Pool
) -> None:
    first, second = await adhoc_drafts(pool, billed, 2)
    assert (await other(api, "DELETE", f"/api/v1/invoices/{first}")).status_code == 404
    refused = await api.client.delete(
        f"/api/v1/invoices/{first}", headers=api.a.auth(Role.DISPATCHER)
    )
    assert refused.status_code == 403
    gone = await api.client.delete(f"/api/v1/invoices/{first}", headers=api.a.auth(Role.ACCOUNTANT))
    assert gone.status_code == 204
    assert (await api.get(f"/api/v1/invoices/{first}")).status_code == 404
    assert (await api.post(f"/api/v1/invoices/{second}/issue", Role.ADMIN)).status_code == 200
    stays = await api.client.delete(f"/api/v1/invoices/{second}", headers=api.a.auth(Role.ADMIN))
    assert (stays.status_code, error_of(stays)["field"]) == (409, "invoice_id")


async def test_the_list_filters_and_pages_by_id(
    api: ApiUnderTest, billed: Billed, pool: Pool
) -> None:
    ids = await adhoc_drafts(pool, billed, 5)
    first_page = (await api.get("/api/v1/invoices", params={"limit": 2})).json()
    assert [i["id"] for i in first_page] == [ids[4], ids[3]]
    next_page = await api.get("/api/v1/invoices", params={"limit": 2, "after_id": ids[3]})
    assert [i["id"] for i in next_page.json()] == [ids[2], ids[1]]
    issued_first = await api.post(f"/api/v1/invoices/{ids[0]}/issue", Role.ACCOUNTANT)
    assert issued_first.status_code == 200
    issued = await api.get(
        "/api/v1/invoices", params={"status": "issued", "issued_from": "2026-12-04"}
    )
    assert [i["id"] for i in issued.json()] == [ids[0]]
    later = await api.get("/api/v1/invoices", params={"issued_from": "2026-12-05"})
    assert later.json() == []
    mine = await api.get("/api/v1/invoices", params={"customer_id": billed.customer_ids[0]})
    assert len(mine.json()) == 5
    number = issued.json()[0]["number"]
    by_number = await api.get("/api/v1/invoices", params={"number": number})
    assert [i["id"] for i in by_number.json()] == [ids[0]]
    name = mine.json()[0]["buyer_name"]
    by_buyer = await api.get("/api/v1/invoices", params={"buyer": name[1:5]})
    assert {i["id"] for i in by_buyer.json()} >= set(ids)
    assert (await api.get("/api/v1/invoices", params={"buyer": "_%"})).json() == []
    for params, name in (
        ({"limit": 1001}, "limit"),
        ({"status": "paid"}, "status"),
        ({"issued_from": "2026-13-01"}, "issued_from"),
        ({"after_id": 0}, "after_id"),
        ({"area_id": "x"}, "area_id"),
        ({"number": 0}, "number"),
        ({"buyer": "x" * 101}, "buyer"),
    ):
        bad = await api.get("/api/v1/invoices", params=params)
        assert (bad.status_code, error_of(bad)["field"]) == (422, name), params
    assert (await api.get("/api/v1/invoices", Role.DRIVER)).status_code == 403
    assert (await api.get("/api/v1/invoices", Role.CASHIER)).status_code == 200


async def test_postpaid_customers_wait_until_the_companys_period_is_over(
    api: ApiUnderTest, billed: Billed, pool: Pool
) -> None:
    december = RUN | {"period_start": "2026-12-01", "series_id": billed.series_id}
    early = await api.post("/api/v1/billing-runs", Role.ACCOUNTANT, json=december)
    assert early.status_code == 201, early.text
    assert (early.json()["invoices_drafted"], early.json()["postpaid_waiting"]) == (0, 3)
    # 00:30 on 1 January in Hà Nội, still 31 December in UTC: December is over here.
    api.clock.advance(
        (dt.datetime(2026, 12, 31, 17, 30, tzinfo=dt.UTC) - api.clock.now()).total_seconds()
    )
    async with pool.connection() as conn:
        issued = await accounts.issue_token(
            conn, api.a.users[Role.ACCOUNTANT], api.clock.now(), 3600
        )
    late = await api.client.post(
        "/api/v1/billing-runs",
        json=december,
        headers={"Authorization": f"Bearer {issued.token}"},
    )
    assert late.status_code == 201, late.text
    assert (late.json()["invoices_drafted"], late.json()["postpaid_waiting"]) == (3, 0)
