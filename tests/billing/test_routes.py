"""The billing endpoints: who may read and write, and what a bad request answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

import accounts
from accounts import Role
from api.context import ApiContext
from api.server import http_app
from customers.models import PointTermsFields
from customers.terms import open_terms
from sanitrack.clock import ManualClock
from sanitrack.settings import ApiSettings
from storage import Pool, PositionsBackend
from tests.api.conftest import NOW, ApiUnderTest, accounts_authenticator, build_tenant
from tests.billing.cases import HANOI_URBAN, HCMC_2025
from tests.support import truncate

TARIFF: dict[str, Any] = {
    "code": "HN-2026",
    "name": "Hộ gia đình nội thành",
    "legal_basis": "QĐ 54/2016/QĐ-UBND",
    "area_group": "urban",
    "customer_class": "household",
    "service": "collection",
    "params": HANOI_URBAN,
    "vat_rate": "KCT",
    "valid_from": "2026-01-01",
}


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        accounts.service, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )


@pytest.fixture
async def api(pool: Pool) -> AsyncIterator[ApiUnderTest]:
    async with pool.connection() as conn:
        await truncate(conn, "users", "api_tokens", "street_map")
    a = await build_tenant(pool, "tenant-a")
    b = await build_tenant(pool, "tenant-b")
    clock = ManualClock(NOW)
    ctx = ApiContext(pool, clock, ApiSettings(), PositionsBackend.NATIVE)

    async def healthy() -> dict[str, Any]:
        return {"ok": True}

    app = http_app(ctx, accounts_authenticator(pool, clock), healthy, [])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield ApiUnderTest(client, ctx, clock, a, b, [])


async def test_accountants_write_tariffs_and_the_office_reads_them(api: ApiUnderTest) -> None:
    created = await api.post("/api/v1/tariffs", Role.ACCOUNTANT, json=TARIFF)
    assert created.status_code == 201, created.text
    tariff = created.json()
    assert tariff["params"] == HANOI_URBAN
    assert tariff["valid_to"] is None
    for role in (Role.ADMIN, Role.DISPATCHER, Role.ACCOUNTANT):
        listed = await api.get("/api/v1/tariffs", role)
        assert [t["code"] for t in listed.json()] == ["HN-2026"], role
    for role in (Role.CASHIER, Role.COLLECTOR, Role.DRIVER, Role.CUSTOMER):
        assert (await api.get("/api/v1/tariffs", role)).status_code == 403, role
    refused = await api.post("/api/v1/tariffs", Role.DISPATCHER, json=TARIFF | {"code": "X"})
    assert refused.status_code == 403
    closed = await api.post(
        f"/api/v1/tariffs/{tariff['id']}/close", Role.ADMIN, json={"valid_to": "2027-01-01"}
    )
    assert closed.json()["valid_to"] == "2027-01-01"
    fetched = await api.get(f"/api/v1/tariffs/{tariff['id']}")
    assert fetched.json() == closed.json()
    # Another company does not see it.
    other = await api.client.get(f"/api/v1/tariffs/{tariff['id']}", headers=api.b.auth())
    assert other.status_code == 404
    assert (await api.get("/api/v1/tariffs", params={"valid_on": "2027-01-01"})).json() == []
    assert (await api.client.post("/api/v1/tariffs", json=TARIFF)).status_code == 401


@pytest.mark.parametrize(
    ("changes", "status", "field", "reason"),
    [
        (
            {"params": HCMC_2025 | {"bands": list(reversed(HCMC_2025["bands"]))}},
            422,
            "params.weight_band",
            "bands[1].up_to_kg: 250 kg must be above the band before (420 kg)",
        ),
        (
            {"params": {"basis": "per_person", "price_per_person_vnd": -6000}},
            422,
            "params.per_person.price_per_person_vnd",
            "Input should be greater than or equal to 0",
        ),
        ({"valid_from": "2027-01-01"}, 409, "valid_from", "overlaps tariff version HN-2026"),
    ],
)
async def test_a_bad_tariff_is_a_4xx_naming_the_field(
    api: ApiUnderTest, changes: dict[str, Any], status: int, field: str, reason: str
) -> None:
    assert (await api.post("/api/v1/tariffs", Role.ACCOUNTANT, json=TARIFF)).status_code == 201
    answer = await api.post("/api/v1/tariffs", Role.ACCOUNTANT, json=TARIFF | changes)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["field"] == field
    assert reason in error["reason"]


async def test_charge_runs(api: ApiUnderTest, pool: Pool) -> None:
    assert (await api.post("/api/v1/tariffs", Role.ACCOUNTANT, json=TARIFF)).status_code == 201
    async with pool.connection() as conn:
        await conn.execute(
            "DELETE FROM service_point_terms WHERE service_point_id = %s",
            (api.a.service_point_id,),
        )
        await open_terms(
            conn,
            api.a.tenant_id,
            api.a.service_point_id,
            dt.date(2026, 1, 1),
            PointTermsFields(so_khau=4),
            "urban",
        )
    body = {"period_start": "2026-06-01", "billing_period": "monthly"}
    assert (await api.post("/api/v1/charges/runs", Role.DISPATCHER, json=body)).status_code == 403
    run = await api.post("/api/v1/charges/runs", Role.ACCOUNTANT, json=body)
    assert run.status_code == 200, run.text
    assert run.json() | {"problems": []} == {
        "period_start": "2026-06-01",
        "period_end": "2026-07-01",
        "billing_period": "monthly",
        "points": 1,
        "rows_computed": 1,
        "rows_written": 1,
        "rows_unchanged": 0,
        "rows_invoiced": 0,
        "rows_removed": 0,
        "total_vnd": 24_000,
        "problems_count": 0,
        "problems": [],
    }
    charges = await api.get("/api/v1/charges", params={"service_point_id": api.a.service_point_id})
    assert [(c["amount_vnd"], c["quantity"], c["unit"]) for c in charges.json()] == [
        (24_000, "4.000", "person")
    ]
    assert (await api.client.get("/api/v1/charges", headers=api.b.auth())).json() == []
    bad = await api.post(
        "/api/v1/charges/runs",
        Role.ACCOUNTANT,
        json={"period_start": "2026-02-01", "billing_period": "quarterly"},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "period_start"
