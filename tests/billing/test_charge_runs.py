"""Tariff versions and charge runs against the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from psycopg import AsyncConnection

import audit
import billing
import customers
import fleet
from customers.models import PointTermsFields
from customers.terms import change_terms_from, open_terms
from storage import Pool
from tests.billing.cases import HANOI_URBAN, HCMC_2025, D
from tests.billing.invoice_support import SELLER

NOW = dt.datetime(2026, 7, 5, 3, 0, tzinfo=dt.UTC)
ACCOUNTANT = audit.Actor("ketoan", None)
JUNE, JULY = D(2026, 6, 1), D(2026, 7, 1)
NEW_YEAR = D(2026, 1, 1)


def tariff(code: str, params: dict[str, Any], **changes: Any) -> billing.NewTariffVersion:
    values: dict[str, Any] = {
        "code": code,
        "name": f"Biểu giá {code}",
        "legal_basis": "QĐ 54/2016/QĐ-UBND",
        "area_group": "urban",
        "customer_class": "household",
        "service": "collection",
        "params": params,
        "vat_rate": "KCT",
        "valid_from": D(2026, 1, 1),
    }
    return billing.NewTariffVersion.model_validate(values | changes)


async def new_tenant(conn: AsyncConnection[Any]) -> int:
    tenant = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "URENCO")
    return tenant.id


async def add_point(
    conn: AsyncConnection[Any],
    tenant_id: int,
    code: str,
    *,
    valid_from: dt.date = NEW_YEAR,
    area_group: str = "urban",
    **terms: Any,
) -> int:
    ids = await customers.ensure_service_points(
        conn,
        tenant_id,
        [
            customers.NewServicePoint(
                code=code,
                name=f"Hộ {code}",
                kind=customers.CustomerKind.HOUSEHOLD,
                lat=20.97,
                lon=105.77,
            )
        ],
    )
    point_id = ids[code]
    # Whatever terms creating the point gave it are replaced by the test's own.
    await conn.execute("DELETE FROM service_point_terms WHERE service_point_id = %s", (point_id,))
    await open_terms(conn, tenant_id, point_id, valid_from, PointTermsFields(**terms), area_group)
    return point_id


async def amounts(
    conn: AsyncConnection[Any], tenant_id: int, **filters: Any
) -> dict[tuple[int, dt.date, str], int]:
    return {
        (c.service_point_id, c.period_start, c.component): c.amount_vnd
        for c in await billing.charges_of(conn, tenant_id, **filters)
    }


async def test_overlapping_tariff_versions_are_refused_and_writes_audited(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant = await new_tenant(conn)
        first = await billing.create_tariff_version(
            conn, tenant, ACCOUNTANT, NOW, tariff("HN-2026", HANOI_URBAN)
        )
        assert first.valid_to is None
        assert first.params == billing.PerPerson(price_per_person_vnd=6000)
        with pytest.raises(
            billing.Conflict, match=r"^valid_from: .*overlaps tariff version HN-2026"
        ):
            await billing.create_tariff_version(
                conn,
                tenant,
                ACCOUNTANT,
                NOW,
                tariff("HN-2027", HANOI_URBAN, valid_from=D(2027, 1, 1)),
            )
        with pytest.raises(billing.Conflict, match=r"^code: HN-2026 is already used"):
            await billing.create_tariff_version(
                conn,
                tenant,
                ACCOUNTANT,
                NOW,
                tariff("HN-2026", HANOI_URBAN, customer_class="business"),
            )
        # Another class, area or service does not clash.
        await billing.create_tariff_version(
            conn, tenant, ACCOUNTANT, NOW, tariff("HN-R", HANOI_URBAN, area_group="rural")
        )
        closed = await billing.close_tariff_version(
            conn, tenant, ACCOUNTANT, NOW, first.id, D(2027, 1, 1)
        )
        assert closed.valid_to == D(2027, 1, 1)
        second = await billing.create_tariff_version(
            conn,
            tenant,
            ACCOUNTANT,
            NOW,
            tariff(
                "HN-2027",
                {"basis": "per_person", "price_per_person_vnd": 21000},
                valid_from=D(2027, 1, 1),
                vat_rate="8",
            ),
        )
        with pytest.raises(billing.Conflict, match=r"^valid_to: 2027-06-01 would extend"):
            await billing.close_tariff_version(
                conn, tenant, ACCOUNTANT, NOW, first.id, D(2027, 6, 1)
            )
        with pytest.raises(billing.InvalidValue, match=r"^valid_to: 2026-01-01 must be after"):
            await billing.close_tariff_version(
                conn, tenant, ACCOUNTANT, NOW, first.id, D(2026, 1, 1)
            )
        # Closing on the same day again is no change.
        again = await billing.close_tariff_version(
            conn, tenant, ACCOUNTANT, NOW, first.id, D(2027, 1, 1)
        )
        assert again == closed
        assert await billing.get_tariff_version(conn, tenant, second.id) == second
        in_force = await billing.list_tariff_versions(conn, tenant, valid_on=D(2027, 3, 1))
        assert [v.code for v in in_force] == ["HN-R", "HN-2027"]
        listed = await billing.list_tariff_versions(conn, tenant, area_group="urban")
        assert [v.code for v in listed] == ["HN-2026", "HN-2027"]

        entries = await audit.history(conn, tenant, entity="tariff_version")
        assert [(e.entity_id, e.action) for e in reversed(entries)] == [
            (first.id, "create"),
            (entries[-2].entity_id, "create"),
            (first.id, "close"),
            (second.id, "create"),
        ]
        assert entries[1].before == {"valid_to": None}
        assert entries[1].after == {"valid_to": "2027-01-01"}
        assert entries[0].after is not None
        assert entries[0].after["params"] == {
            "basis": "per_person",
            "price_per_person_vnd": 21000,
        }
        assert entries[0].actor == "ketoan"
        assert await audit.verify_chain(conn, tenant) == []


async def test_compute_charges_is_idempotent(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant = await new_tenant(conn)
        await billing.create_tariff_version(
            conn, tenant, ACCOUNTANT, NOW, tariff("HN", HANOI_URBAN)
        )
        await billing.create_tariff_version(
            conn,
            tenant,
            ACCOUNTANT,
            NOW,
            tariff("HCM", HCMC_2025, area_group="hcm", vat_rate="8"),
        )
        a = await add_point(conn, tenant, "KH1", so_khau=4)
        b = await add_point(
            conn, tenant, "KH2", area_group="hcm", weight_kg_per_month=Decimal("300")
        )
        seen: list[tuple[int, int]] = []
        run = await billing.compute_charges(
            conn, tenant, JUNE, "monthly", now=NOW, progress=lambda d, t: seen.append((d, t))
        )
        assert (run.points, run.rows_computed, run.rows_written, run.rows_unchanged) == (2, 3, 3, 0)
        assert run.total_vnd == 24_000 + 163_000 + 60_000
        assert run.problems == []
        assert seen == [(2, 2)]
        before = await billing.charges_of(conn, tenant)
        assert {(c.service_point_id, c.component, c.amount_vnd) for c in before} == {
            (a, "collection", 24_000),
            (b, "collection", 163_000),
            (b, "transport", 60_000),
        }
        hcm = next(c for c in before if c.component == "transport")
        assert (hcm.quantity, hcm.unit, hcm.vat_rate, hcm.period_end) == (
            Decimal("300.000"),
            "kg",
            "8",
            JULY,
        )
        assert hcm.detail == [
            {
                "from": "2026-06-01",
                "to": "2026-07-01",
                "days": 30,
                "quantity": 300,
                "rate_vnd": 60000,
                "tariff_version_id": hcm.tariff_version_id,
                "exemption_pct": 0,
            }
        ]
        again = await billing.compute_charges(
            conn, tenant, JUNE, "monthly", now=NOW + dt.timedelta(days=1)
        )
        assert (again.rows_computed, again.rows_written, again.rows_unchanged) == (3, 0, 3)
        assert again.rows_removed == 0
        assert await billing.charges_of(conn, tenant) == before  # ids and computed_at too
        count = await conn.execute("SELECT count(*) FROM charges WHERE tenant_id = %s", (tenant,))
        assert await count.fetchone() == (3,)


async def test_invoiced_charges_are_left_alone(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant = await new_tenant(conn)
        await billing.create_tariff_version(
            conn, tenant, ACCOUNTANT, NOW, tariff("HN", HANOI_URBAN)
        )
        invoiced = await add_point(conn, tenant, "KH1", so_khau=4)
        open_point = await add_point(conn, tenant, "KH2", so_khau=4)
        await billing.set_seller(conn, tenant, SELLER)
        series = await billing.create_series(
            conn, tenant, ACCOUNTANT, NOW, billing.NewSeries(symbol="C26TAA")
        )
        await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE, series.id)
        (draft,) = [
            d
            for d in await billing.list_invoices(conn, tenant)
            if d.buyer_code == "KH1" and d.status == billing.InvoiceStatus.DRAFT
        ]
        await billing.issue_invoices(
            conn, tenant, ACCOUNTANT, NOW, [draft.id], issue_date=NOW.date()
        )
        for point in (invoiced, open_point):
            await change_terms_from(conn, tenant, point, JUNE, {"so_khau": 6}, today=NOW.date())
        run = await billing.compute_charges(conn, tenant, JUNE, "monthly", now=NOW)
        assert (run.rows_written, run.rows_invoiced, run.rows_unchanged) == (1, 1, 0)
        assert await amounts(conn, tenant) == {
            (invoiced, JUNE, "collection"): 24_000,  # as invoiced
            (open_point, JUNE, "collection"): 36_000,
        }
        # the difference is proposed as an adjustment of the issued invoice, once
        assert run.adjustments_proposed == 1
        (proposal,) = await billing.list_proposals(conn, tenant)
        assert (proposal.invoice_id, proposal.difference_vnd) == (draft.id, 12_000)


async def test_recompute_after_a_mid_period_change_prorates(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant = await new_tenant(conn)
        await billing.create_tariff_version(
            conn, tenant, ACCOUNTANT, NOW, tariff("HN", HANOI_URBAN)
        )
        point = await add_point(conn, tenant, "KH1", so_khau=4)
        other = await add_point(conn, tenant, "KH2", so_khau=2)
        for start in (D(2026, 5, 1), JUNE, JULY):
            await billing.compute_charges(conn, tenant, start, "monthly", now=NOW)
        # An approved change: 5 members from 16 June, applied on 5 July.
        assert await change_terms_from(
            conn, tenant, point, D(2026, 6, 16), {"so_khau": 5}, today=NOW.date()
        )
        changed = await billing.recompute_charges(conn, tenant, [point], D(2026, 6, 16), now=NOW)
        assert changed == 2  # June and July; May ended before the change
        assert await amounts(conn, tenant, service_point_id=point) == {
            (point, D(2026, 5, 1), "collection"): 24_000,
            (point, JUNE, "collection"): 27_000,  # 4 × 6,000 × 15/30 + 5 × 6,000 × 15/30
            (point, JULY, "collection"): 30_000,
        }
        assert (await amounts(conn, tenant, service_point_id=other))[other, JULY, "collection"] == (
            12_000
        )
        # Again, as a change request's application calls it: nothing more to change.
        hook = billing.recompute_on_terms_change(NOW)
        assert await hook(conn, tenant, [point], since=JUNE) == 0


async def test_a_recompute_keeps_the_period_a_customer_was_billed_by(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant = await new_tenant(conn)
        await billing.create_tariff_version(
            conn, tenant, ACCOUNTANT, NOW, tariff("HN", HANOI_URBAN)
        )
        point = await add_point(conn, tenant, "KH1", so_khau=4)
        await conn.execute(
            "UPDATE customers SET billing_period = 'quarterly' WHERE id ="
            " (SELECT customer_id FROM service_points WHERE id = %s)",
            (point,),
        )
        monthly = await billing.compute_charges(conn, tenant, JULY, "monthly", now=NOW)
        assert monthly.points == 0  # a quarterly customer is not in a monthly run
        run = await billing.compute_charges(conn, tenant, JULY, "quarterly", now=NOW)
        assert run.total_vnd == 72_000
        # The customer moves to monthly billing; Q3's charge stands until recomputed.
        await conn.execute("UPDATE customers SET billing_period = 'monthly'")
        await change_terms_from(
            conn, tenant, point, D(2026, 8, 1), {"so_khau": 5}, today=NOW.date()
        )
        assert await billing.recompute_charges(conn, tenant, [point], D(2026, 8, 1), now=NOW) == 1
        (charge,) = await billing.charges_of(conn, tenant)
        # 6,000 × 3 months × (4 × 31 + 5 × 61) / 92 days = 83,934.78
        assert (charge.period_end, charge.amount_vnd) == (D(2026, 10, 1), 83_935)


async def test_problems_are_reported_and_stale_rows_removed(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant = await new_tenant(conn)
        await billing.create_tariff_version(
            conn, tenant, ACCOUNTANT, NOW, tariff("HN", HANOI_URBAN)
        )
        priced = await add_point(
            conn, tenant, "KH1", so_khau=4, services=["collection", "recycling"]
        )
        no_so_khau = await add_point(conn, tenant, "KH2")
        no_tariff = await add_point(conn, tenant, "KH3", so_khau=3, area_group="da_nang")
        run = await billing.compute_charges(conn, tenant, JUNE, "monthly", now=NOW)
        assert (run.points, run.rows_computed, run.problems_count) == (3, 1, 3)
        problems = {(p.point_id, p.service): p.reason for p in run.problems}
        assert set(problems) == {
            (priced, "recycling"),
            (no_so_khau, "collection"),
            (no_tariff, "collection"),
        }
        assert problems[no_so_khau, "collection"].startswith("so_khau: missing")
        # The point is terminated from June: its June charge is no longer owed.
        await change_terms_from(
            conn, tenant, priced, JUNE, {"status": "terminated"}, today=NOW.date()
        )
        again = await billing.compute_charges(conn, tenant, JUNE, "monthly", now=NOW)
        assert (again.rows_computed, again.rows_removed) == (0, 1)
        assert await billing.charges_of(conn, tenant) == []


async def test_tenants_see_only_their_own(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_a, tenant_b = await new_tenant(conn), await new_tenant(conn)
        version_a = await billing.create_tariff_version(
            conn, tenant_a, ACCOUNTANT, NOW, tariff("HN", HANOI_URBAN)
        )
        # The same code and validity in another company is its own.
        version_b = await billing.create_tariff_version(
            conn,
            tenant_b,
            ACCOUNTANT,
            NOW,
            tariff("HN", {"basis": "per_person", "price_per_person_vnd": 3000}),
        )
        point_a = await add_point(conn, tenant_a, "KH1", so_khau=4)
        point_b = await add_point(conn, tenant_b, "KH1", so_khau=4)
        run_a = await billing.compute_charges(conn, tenant_a, JUNE, "monthly", now=NOW)
        assert (run_a.points, run_a.total_vnd) == (1, 24_000)
        assert await billing.charges_of(conn, tenant_b) == []
        with pytest.raises(billing.NotFound):
            await billing.get_tariff_version(conn, tenant_b, version_a.id)
        with pytest.raises(billing.NotFound):
            await billing.close_tariff_version(
                conn, tenant_b, ACCOUNTANT, NOW, version_a.id, D(2027, 1, 1)
            )
        # Point ids of another company are not priced in this one's run.
        run_b = await billing.compute_charges(
            conn, tenant_b, JUNE, "monthly", now=NOW, point_ids=[point_a, point_b]
        )
        assert (run_b.points, run_b.total_vnd) == (1, 12_000)
        assert await amounts(conn, tenant_a) == {(point_a, JUNE, "collection"): 24_000}
        (charge_b,) = await billing.charges_of(conn, tenant_b)
        assert charge_b.tariff_version_id == version_b.id
        assert (
            await audit.history(conn, tenant_b, entity="tariff_version", entity_id=version_a.id)
            == []
        )


async def test_a_start_that_starts_no_period_is_refused(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant = await new_tenant(conn)
        with pytest.raises(billing.InvalidValue, match=r"^period_start: 2026-02-01 does not start"):
            await billing.compute_charges(conn, tenant, D(2026, 2, 1), "quarterly", now=NOW)
