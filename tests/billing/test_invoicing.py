"""Billing runs, series and numbers, corrections and ad-hoc invoices against the real
PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import pytest
from psycopg import AsyncConnection

import audit
import billing
from billing.charge_runs import recompute_charges
from customers.terms import change_terms_from
from storage import Pool
from tests.billing.cases import HANOI_BUSINESS, HANOI_URBAN, D
from tests.billing.invoice_support import SELLER
from tests.billing.test_charge_runs import add_point, new_tenant, tariff

NOW = dt.datetime(2026, 7, 2, 2, 0, tzinfo=dt.UTC)
TODAY = D(2026, 7, 2)
ACCOUNTANT = audit.Actor("ketoan")
JUNE = D(2026, 6, 1)


async def company(conn: AsyncConnection[Any], *, vat_rate: str = "8") -> tuple[int, int]:
    """A tenant with its seller, urban household and business tariffs and series 1C26TAA."""
    tenant = await new_tenant(conn)
    await billing.set_seller(conn, tenant, SELLER)
    await billing.create_tariff_version(
        conn, tenant, ACCOUNTANT, NOW, tariff("HN-HH", HANOI_URBAN, vat_rate=vat_rate)
    )
    await billing.create_tariff_version(
        conn,
        tenant,
        ACCOUNTANT,
        NOW,
        tariff("HN-BIZ", HANOI_BUSINESS, customer_class="business", vat_rate=vat_rate),
    )
    series = await billing.create_series(
        conn, tenant, ACCOUNTANT, NOW, billing.NewSeries(symbol="C26TAA", name="Phí vệ sinh")
    )
    return tenant, series.id


async def customer_of(conn: AsyncConnection[Any], point_id: int) -> int:
    cursor = await conn.execute("SELECT customer_id FROM service_points WHERE id = %s", (point_id,))
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def join_customer(conn: AsyncConnection[Any], point_id: int, customer_id: int) -> None:
    await conn.execute(
        "UPDATE service_points SET customer_id = %s WHERE id = %s", (customer_id, point_id)
    )


async def drafts_of(conn: AsyncConnection[Any], tenant: int) -> list[billing.Invoice]:
    return await billing.list_invoices(
        conn, tenant, billing.InvoiceFilter(status=billing.InvoiceStatus.DRAFT)
    )


async def test_a_used_series_refuses_edits_and_symbols_are_checked(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        renamed = await billing.update_series(
            conn, tenant, ACCOUNTANT, NOW, series_id, billing.SeriesChanges(symbol="C26TAB")
        )
        assert renamed.code == "1C26TAB"
        assert renamed.year == 2026
        with pytest.raises(billing.Conflict, match=r"^symbol: series 1C26TAB already exists"):
            await billing.create_series(
                conn, tenant, ACCOUNTANT, NOW, billing.NewSeries(symbol="C26TAB")
            )
        with pytest.raises(ValueError, match="symbol"):
            billing.NewSeries(symbol="C26XAA")
        point = await add_point(conn, tenant, "HK1", so_khau=2)
        await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE, series_id)
        (draft,) = await drafts_of(conn, tenant)
        await billing.issue_invoices(conn, tenant, ACCOUNTANT, NOW, [draft.id], issue_date=TODAY)
        with pytest.raises(billing.Conflict, match=r"^symbol: series 1C26TAB is used \(1 invoices"):
            await billing.update_series(
                conn, tenant, ACCOUNTANT, NOW, series_id, billing.SeriesChanges(symbol="C26TAC")
            )
        retired = await billing.update_series(
            conn, tenant, ACCOUNTANT, NOW, series_id, billing.SeriesChanges(active=False)
        )
        assert not retired.active
        assert retired.symbol == "C26TAB"
        assert point > 0
        entries = await audit.history(conn, tenant, entity="invoice_series", entity_id=series_id)
        assert [e.action for e in entries] == ["update", "update", "create"]  # newest first


async def test_a_billing_run_drafts_one_invoice_per_customer_and_never_twice(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        home = await add_point(conn, tenant, "HK1", so_khau=3)
        shop = await add_point(
            conn, tenant, "CH1", customer_class="business", volume_m3_per_month=2
        )
        other = await add_point(conn, tenant, "HK2", so_khau=1)
        owner = await customer_of(conn, home)
        await join_customer(conn, shop, owner)
        progress: list[tuple[str, int, int]] = []
        run = await billing.run_billing(
            conn,
            tenant,
            ACCOUNTANT,
            NOW,
            "monthly",
            JUNE,
            series_id,
            progress=lambda *p: progress.append(p),
        )
        assert run.invoices_drafted == 2
        assert run.drafts_replaced == 0
        assert progress[-1] == ("drafts", 2, 2)
        assert progress[0][0] == "charges"
        drafts = {d.customer_id: d for d in await drafts_of(conn, tenant)}
        both = drafts[owner]
        # 3 persons × 6,000 and 2 m³ × 208,000, each plus 8 % VAT rounded per line
        assert (both.subtotal_vnd, both.vat_vnd) == (18_000 + 416_000, 1_440 + 33_280)
        assert both.total_vnd == 18_000 + 416_000 + 1_440 + 33_280
        assert drafts[await customer_of(conn, other)].total_vnd == 6_000 + 480
        assert run.total_vnd == both.total_vnd + 6_480
        (document,) = await billing.load_documents(conn, tenant, [both.id])
        # in the collector's walking order, then by point code: the shop CH1 before HK1
        assert [(line.line_no, line.amount_vnd) for line in document.lines] == [
            (1, 416_000),
            (2, 18_000),
        ]
        assert all("tháng 06/2026" in line.description for line in document.lines)
        assert {line.unit for line in document.lines} == {"người", "m³"}

        again = await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE, series_id)
        assert (again.invoices_drafted, again.drafts_replaced) == (2, 2)
        assert len(await drafts_of(conn, tenant)) == 2
        issued = await billing.issue_invoices(
            conn,
            tenant,
            ACCOUNTANT,
            NOW,
            [d.id for d in await drafts_of(conn, tenant)],
            issue_date=TODAY,
        )
        assert sorted(i.number for i in issued) == [1, 2]
        by_number = await billing.list_invoices(conn, tenant, billing.InvoiceFilter(number=2))
        assert [i.number for i in by_number] == [2]
        by_buyer = await billing.list_invoices(
            conn, tenant, billing.InvoiceFilter(buyer=both.buyer_name[2:6].lower())
        )
        assert owner in {i.customer_id for i in by_buyer}
        assert await billing.list_invoices(conn, tenant, billing.InvoiceFilter(buyer="%")) == []
        assert (await billing.get_billing_run(conn, tenant, again.id)).drafts_replaced == 2
        with pytest.raises(billing.NotFound):
            await billing.get_billing_run(conn, tenant, again.id + 1000)
        third = await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE, series_id)
        assert third.invoices_drafted == 0
        assert third.charges_invoiced == 3
        assert await drafts_of(conn, tenant) == []
        cursor = await conn.execute(
            "SELECT count(*) FROM charges WHERE tenant_id = %s AND invoice_id IS NULL", (tenant,)
        )
        assert await cursor.fetchone() == (0,)


async def test_concurrent_issuers_get_numbers_1_to_100_ascending_by_issue_time(
    pool: Pool,
) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        customer = await customer_of(conn, await add_point(conn, tenant, "HK1", so_khau=1))
        line = billing.NewLine(
            service="extra", description="Thu gom bổ sung", amount_vnd=50_000, vat_rate="8"
        )
        ids = [
            await billing.create_adhoc_invoice(
                conn,
                tenant,
                ACCOUNTANT,
                NOW,
                billing.NewAdhocInvoice(customer_id=customer, series_id=series_id, lines=[line]),
            )
            for _ in range(100)
        ]

    async def issue(invoice_id: int, at: dt.datetime) -> billing.Issued:
        async with pool.connection() as conn, conn.transaction():
            (issued,) = await billing.issue_invoices(
                conn, tenant, ACCOUNTANT, at, [invoice_id], issue_date=TODAY
            )
            return issued

    # clocks that disagree: the series never stamps a later number with an earlier time
    results = await asyncio.gather(
        *(issue(i, NOW + dt.timedelta(seconds=(i * 37) % 11)) for i in ids)
    )
    assert sorted(r.number for r in results) == list(range(1, 101))
    by_number = sorted(results, key=lambda r: r.number)
    assert all(a.issued_at <= b.issued_at for a, b in itertools.pairwise(by_number))
    async with pool.connection() as conn:
        series = await billing.get_series(conn, tenant, series_id)
        assert series.next_number == 101
        cursor = await conn.execute(
            "SELECT count(DISTINCT number), min(number), max(number) FROM invoices"
            " WHERE tenant_id = %s AND symbol = 'C26TAA'",
            (tenant,),
        )
        assert await cursor.fetchone() == (100, 1, 100)


async def test_a_rolled_back_issue_gives_its_numbers_back(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        customer = await customer_of(conn, await add_point(conn, tenant, "HK1", so_khau=1))
        new = billing.NewAdhocInvoice(
            customer_id=customer,
            series_id=series_id,
            lines=[
                billing.NewLine(
                    service="extra", description="Thu gom", amount_vnd=1, vat_rate="KCT"
                )
            ],
        )
        first = await billing.create_adhoc_invoice(conn, tenant, ACCOUNTANT, NOW, new)
        second = await billing.create_adhoc_invoice(conn, tenant, ACCOUNTANT, NOW, new)

    async def issue_then_fail() -> None:
        async with pool.connection() as conn, conn.transaction():
            await billing.issue_invoices(conn, tenant, ACCOUNTANT, NOW, [first], issue_date=TODAY)
            raise RuntimeError("the signing device failed")

    with pytest.raises(RuntimeError):
        await issue_then_fail()
    async with pool.connection() as conn:
        issued = await billing.issue_invoices(
            conn, tenant, ACCOUNTANT, NOW, [second, first], issue_date=TODAY
        )
        assert [(i.invoice_id, i.number) for i in issued] == [(second, 1), (first, 2)]
        with pytest.raises(billing.Conflict, match=rf"^invoice_id: invoice {first} is already"):
            await billing.issue_invoices(conn, tenant, ACCOUNTANT, NOW, [first], issue_date=TODAY)


async def test_the_first_issue_of_a_new_year_rolls_the_series_over(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        customer = await customer_of(conn, await add_point(conn, tenant, "HK1", so_khau=1))
        new = billing.NewAdhocInvoice(
            customer_id=customer,
            series_id=series_id,
            lines=[
                billing.NewLine(
                    service="extra", description="Thu gom", amount_vnd=10, vat_rate="KCT"
                )
            ],
        )
        ids = [
            await billing.create_adhoc_invoice(conn, tenant, ACCOUNTANT, NOW, new) for _ in range(4)
        ]
        await billing.issue_invoices(conn, tenant, ACCOUNTANT, NOW, ids[:2], issue_date=TODAY)
        new_year = dt.datetime(2026, 12, 31, 17, 30, tzinfo=dt.UTC)  # 00:30 on 1 January in Hà Nội
        issued = await billing.issue_invoices(
            conn, tenant, ACCOUNTANT, new_year, ids[2:], issue_date=D(2027, 1, 1)
        )
        assert [(i.symbol, i.number) for i in issued] == [("C27TAA", 1), ("C27TAA", 2)]
        codes = {s.code: s for s in await billing.list_series(conn, tenant)}
        assert codes["1C27TAA"].rolled_from_id == series_id
        assert codes["1C27TAA"].next_number == 3
        assert codes["1C26TAA"].next_number == 3
        late = await billing.create_adhoc_invoice(conn, tenant, ACCOUNTANT, NOW, new)
        with pytest.raises(billing.InvalidValue, match=r"^issue_date: the year 2025"):
            await billing.issue_invoices(
                conn, tenant, ACCOUNTANT, NOW, [late], issue_date=D(2025, 12, 31)
            )


async def test_cancel_before_delivery_frees_the_charges_for_a_new_invoice(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        await add_point(conn, tenant, "HK1", so_khau=2)
        await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE, series_id)
        (draft,) = await drafts_of(conn, tenant)
        await billing.issue_invoices(conn, tenant, ACCOUNTANT, NOW, [draft.id], issue_date=TODAY)
        with pytest.raises(billing.InvalidValue, match=r"^reason"):
            await billing.cancel_invoice(conn, tenant, ACCOUNTANT, NOW, draft.id, "  ")
        cancelled = await billing.cancel_invoice(
            conn, tenant, ACCOUNTANT, NOW, draft.id, "Sai số khẩu"
        )
        assert cancelled.status == billing.InvoiceStatus.CANCELLED
        assert cancelled.number == 1
        cursor = await conn.execute(
            "SELECT action, reason FROM invoice_error_notices WHERE invoice_id = %s", (draft.id,)
        )
        assert await cursor.fetchall() == [("cancel", "Sai số khẩu")]
        rerun = await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE, series_id)
        assert rerun.invoices_drafted == 1
        (again,) = await drafts_of(conn, tenant)
        (issued,) = await billing.issue_invoices(
            conn, tenant, ACCOUNTANT, NOW, [again.id], issue_date=TODAY
        )
        assert issued.number == 2  # the cancelled number is never used again
        await conn.execute("UPDATE invoices SET status = 'delivered' WHERE id = %s", (again.id,))
        with pytest.raises(billing.Conflict, match="after delivery"):
            await billing.cancel_invoice(conn, tenant, ACCOUNTANT, NOW, again.id, "Sai")


async def test_a_business_buyers_replacement_needs_their_agreement_and_takes_the_charges(
    pool: Pool,
) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        shop = await add_point(
            conn, tenant, "CH1", customer_class="business", volume_m3_per_month=1
        )
        customer = await customer_of(conn, shop)
        await conn.execute(
            "UPDATE customers SET kind = 'business', tax_code = '0101234567' WHERE id = %s",
            (customer,),
        )
        await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE, series_id)
        (original,) = await drafts_of(conn, tenant)
        await billing.issue_invoices(conn, tenant, ACCOUNTANT, NOW, [original.id], issue_date=TODAY)
        replacement = await billing.draft_replacement(
            conn,
            tenant,
            ACCOUNTANT,
            NOW,
            original.id,
            billing.NewReplacement(
                reason="Sai mã số thuế người mua",
                buyer=billing.BuyerChanges(tax_code="0107654321"),
            ),
        )
        with pytest.raises(billing.Conflict, match="already has a replacement"):
            await billing.draft_replacement(
                conn, tenant, ACCOUNTANT, NOW, original.id, billing.NewReplacement(reason="x")
            )
        with pytest.raises(billing.Conflict, match=r"^agreement: "):
            await billing.issue_invoices(
                conn, tenant, ACCOUNTANT, NOW, [replacement], issue_date=TODAY
            )
        agreement = await billing.attach_agreement(
            conn,
            tenant,
            ACCOUNTANT,
            NOW,
            replacement,
            signed_on=TODAY,
            signed_by="Giám đốc Trần Văn Bình",
            filename="bien-ban-thoa-thuan.pdf",
            content_type="application/pdf",
            content=b"%PDF-1.4 bien ban",
        )
        assert len(agreement.sha256) == 64
        (issued,) = await billing.issue_invoices(
            conn, tenant, ACCOUNTANT, NOW, [replacement], issue_date=TODAY
        )
        assert issued.number == 2
        (document,) = await billing.load_documents(conn, tenant, [replacement])
        assert document.invoice.kind == billing.InvoiceKind.REPLACEMENT
        assert document.invoice.buyer_tax_code == "0107654321"
        # it bills the original's period: it shows in the period's lists and batches
        assert (document.invoice.billing_period, document.invoice.period_start) == (
            "monthly",
            JUNE,
        )
        assert document.invoice.total_vnd == original.total_vnd
        (reference,) = document.references
        assert (reference.relation, reference.symbol, reference.number) == ("replaces", "C26TAA", 1)
        before = await billing.get_invoice(conn, tenant, original.id)
        assert before.status == billing.InvoiceStatus.REPLACED
        assert before.buyer_tax_code == "0101234567"  # the original stays as issued
        cursor = await conn.execute(
            "SELECT DISTINCT invoice_id FROM charges WHERE service_point_id = %s", (shop,)
        )
        assert await cursor.fetchall() == [(replacement,)]


async def test_one_adjustment_covers_a_buyers_invoices_of_one_month(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        customer = await customer_of(conn, await add_point(conn, tenant, "HK1", so_khau=1))

        def adhoc(amount: int) -> billing.NewAdhocInvoice:
            return billing.NewAdhocInvoice(
                customer_id=customer,
                series_id=series_id,
                lines=[
                    billing.NewLine(
                        service="extra",
                        description="Thu gom bổ sung",
                        quantity=2,
                        unit_price_vnd=amount,
                        vat_rate="10",
                    )
                ],
            )

        first = await billing.create_adhoc_invoice(conn, tenant, ACCOUNTANT, NOW, adhoc(100_000))
        second = await billing.create_adhoc_invoice(conn, tenant, ACCOUNTANT, NOW, adhoc(50_000))
        await billing.issue_invoices(
            conn, tenant, ACCOUNTANT, NOW, [first, second], issue_date=TODAY
        )
        (doc,) = await billing.load_documents(conn, tenant, [first])
        adjustment = await billing.draft_adjustment(
            conn,
            tenant,
            ACCOUNTANT,
            NOW,
            billing.NewAdjustment(
                invoice_ids=[first, second],
                reason="Thu gom bổ sung tính trùng một lượt",
                lines=[
                    billing.NewLine(
                        service="extra",
                        description="Điều giảm thu gom bổ sung",
                        quantity=-1,
                        unit_price_vnd=100_000,
                        vat_rate="10",
                        adjusts_line_id=doc.lines[0].id,
                    )
                ],
            ),
        )
        (issued,) = await billing.issue_invoices(
            conn, tenant, ACCOUNTANT, NOW, [adjustment], issue_date=TODAY
        )
        (document,) = await billing.load_documents(conn, tenant, [adjustment])
        assert (document.invoice.subtotal_vnd, document.invoice.vat_vnd) == (-100_000, -10_000)
        assert [r.number for r in document.references] == [1, 2]
        assert issued.number == 3
        for original in (first, second):
            assert (
                await billing.get_invoice(conn, tenant, original)
            ).status == billing.InvoiceStatus.ADJUSTED
        later = dt.datetime(2026, 8, 3, 2, tzinfo=dt.UTC)
        august = await billing.create_adhoc_invoice(conn, tenant, ACCOUNTANT, later, adhoc(1_000))
        await billing.issue_invoices(
            conn, tenant, ACCOUNTANT, later, [august], issue_date=D(2026, 8, 3)
        )
        with pytest.raises(
            billing.InvalidValue,
            match=r"^invoice_ids: one adjustment covers invoices issued in one month",
        ):
            await billing.draft_adjustment(
                conn,
                tenant,
                ACCOUNTANT,
                later,
                billing.NewAdjustment(
                    invoice_ids=[first, august],
                    reason="x",
                    lines=[
                        billing.NewLine(
                            service="extra", description="x", amount_vnd=-1, vat_rate="10"
                        )
                    ],
                ),
            )


async def test_a_backdated_change_proposes_an_adjustment_of_the_issued_invoice(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        home = await add_point(conn, tenant, "HK1", so_khau=3)
        await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE, series_id)
        (june,) = await drafts_of(conn, tenant)
        await billing.issue_invoices(conn, tenant, ACCOUNTANT, NOW, [june.id], issue_date=TODAY)
        # from 16 June the household has 5 persons: 15 days × 2 persons more of 30
        await change_terms_from(conn, tenant, home, D(2026, 6, 16), {"so_khau": 5}, today=TODAY)
        await recompute_charges(conn, tenant, [home], D(2026, 6, 16), now=NOW)
        (proposal,) = await billing.list_proposals(conn, tenant)
        assert (proposal.invoice_id, proposal.invoiced_amount_vnd) == (june.id, 18_000)
        assert proposal.recomputed_amount_vnd == 18_000 + 6_000  # 2 × 6,000 × 15/30
        # recomputing again proposes nothing new
        await recompute_charges(conn, tenant, [home], D(2026, 6, 16), now=NOW)
        assert [p.id for p in await billing.list_proposals(conn, tenant)] == [proposal.id]
        (draft,) = await billing.accept_proposals(
            conn, tenant, ACCOUNTANT, NOW, [proposal.id], "Tăng số khẩu từ 16/06"
        )
        (issued,) = await billing.issue_invoices(
            conn, tenant, ACCOUNTANT, NOW, [draft], issue_date=TODAY
        )
        (document,) = await billing.load_documents(conn, tenant, [draft])
        assert document.invoice.subtotal_vnd == 6_000
        assert document.invoice.vat_vnd == 480
        assert document.references[0].number == 1
        assert issued.number == 2
        assert await billing.list_proposals(conn, tenant) == []
        assert [p.id for p in await billing.list_proposals(conn, tenant, status="accepted")] == [
            proposal.id
        ]
        # what was billed now includes the adjustment: the same recompute proposes nothing
        await recompute_charges(conn, tenant, [home], D(2026, 6, 16), now=NOW)
        assert await billing.list_proposals(conn, tenant) == []
        # back to 3 persons: the whole increase is proposed back
        await change_terms_from(conn, tenant, home, D(2026, 6, 16), {"so_khau": 3}, today=TODAY)
        await recompute_charges(conn, tenant, [home], D(2026, 6, 16), now=NOW)
        (back,) = await billing.list_proposals(conn, tenant)
        assert back.difference_vnd == -6_000


async def test_a_closed_period_is_locked(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        home = await add_point(conn, tenant, "HK1", so_khau=3)
        await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE, series_id)
        with pytest.raises(billing.Conflict, match=r"^period_start: 1 draft invoices"):
            await billing.close_period(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE)
        (draft,) = await drafts_of(conn, tenant)
        await billing.issue_invoices(conn, tenant, ACCOUNTANT, NOW, [draft.id], issue_date=TODAY)
        state = await billing.close_period(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE)
        assert (state.status, state.issued, state.drafts) == ("closed", 1, 0)
        with pytest.raises(
            billing.Conflict, match=r"^period_start: the monthly period 2026-06-01 is closed"
        ):
            await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", JUNE, series_id)
        await change_terms_from(conn, tenant, home, D(2026, 6, 16), {"so_khau": 5}, today=TODAY)
        await recompute_charges(conn, tenant, [home], D(2026, 6, 16), now=NOW)
        cursor = await conn.execute(
            "SELECT amount_vnd, invoice_id FROM charges WHERE service_point_id = %s", (home,)
        )
        assert await cursor.fetchall() == [(18_000, draft.id)]
        assert len(await billing.list_proposals(conn, tenant)) == 1


async def test_an_adhoc_line_from_a_stop_visit_carries_its_proof(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        point = await add_point(conn, tenant, "HK1", so_khau=1)
        customer = await customer_of(conn, point)
        cursor = await conn.execute(
            "WITH v AS (INSERT INTO vehicles (tenant_id, code) VALUES (%(t)s, '29C-123.45')"
            " RETURNING id), d AS (INSERT INTO devices (tenant_id, slug, kind, vehicle_id,"
            " credential_hash) SELECT %(t)s, 'truck-1', 'truck', id, 'x' FROM v RETURNING id,"
            " vehicle_id), r AS (INSERT INTO route_runs (tenant_id, vehicle_id, local_date, name,"
            " planned_start, planned_end, corridor_m, expected_path, path_length_m, source)"
            " SELECT %(t)s, vehicle_id, '2026-07-01', 'Tuyến 1', %(at)s, %(at)s, 30,"
            ' \'{"type": "LineString", "coordinates": []}\', 0, \'manual\' FROM d'
            " RETURNING id, vehicle_id)"
            " INSERT INTO stop_visits (tenant_id, route_run_id, stop_seq, service_point_id,"
            " vehicle_id, device_id, status, evidence, arrival_at, departure_at, dwell_s,"
            " closest_m, lat, lon, late) SELECT %(t)s, r.id, 1, %(p)s, r.vehicle_id, d.id,"
            " %(status)s, 'bin_lift', %(at)s, %(at)s + interval '3 minutes', 180, 4, 21.03,"
            " 105.85, false FROM r, d RETURNING id",
            {"t": tenant, "p": point, "at": NOW - dt.timedelta(days=1), "status": "visited"},
        )
        row = await cursor.fetchone()
        assert row is not None
        visit = row[0]
        invoice = await billing.create_adhoc_invoice(
            conn,
            tenant,
            ACCOUNTANT,
            NOW,
            billing.NewAdhocInvoice(
                customer_id=customer,
                series_id=series_id,
                note="Khách gọi điện yêu cầu thu gom xà bần ngày 01/07",
                lines=[
                    billing.NewLine(
                        service="extra",
                        description="Thu gom bổ sung ngoài lịch",
                        unit="chuyến",
                        quantity=1,
                        unit_price_vnd=250_000,
                        vat_rate="8",
                        stop_visit_id=visit,
                    )
                ],
            ),
        )
        (document,) = await billing.load_documents(conn, tenant, [invoice])
        (line,) = document.lines
        assert line.service_point_id == point
        assert line.stop_visit_id == visit
        assert line.proof is not None
        assert (line.proof["vehicle"], line.proof["evidence"]) == ("29C-123.45", "bin_lift")
        assert line.proof["arrival_at"] == (NOW - dt.timedelta(days=1)).isoformat()
        assert document.invoice.total_vnd == 270_000
        other_tenant, other_series = await company(conn)
        with pytest.raises(billing.NotFound, match=f"stop visit {visit}"):
            await billing.create_adhoc_invoice(
                conn,
                other_tenant,
                ACCOUNTANT,
                NOW,
                billing.NewAdhocInvoice(
                    customer_id=customer, series_id=other_series, lines=[line_with_visit(visit)]
                ),
            )


def line_with_visit(visit: int) -> billing.NewLine:
    return billing.NewLine(
        service="extra", description="x", amount_vnd=1, vat_rate="8", stop_visit_id=visit
    )


async def test_another_companys_invoice_is_missing(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        customer = await customer_of(conn, await add_point(conn, tenant, "HK1", so_khau=1))
        invoice = await billing.create_adhoc_invoice(
            conn,
            tenant,
            ACCOUNTANT,
            NOW,
            billing.NewAdhocInvoice(
                customer_id=customer,
                series_id=series_id,
                lines=[
                    billing.NewLine(service="extra", description="x", amount_vnd=5, vat_rate="KCT")
                ],
            ),
        )
        other, _ = await company(conn)
        for call in (
            billing.issue_invoices(conn, other, ACCOUNTANT, NOW, [invoice], issue_date=TODAY),
            billing.cancel_invoice(conn, other, ACCOUNTANT, NOW, invoice, "x"),
            billing.get_invoice(conn, other, invoice),
            billing.get_series(conn, other, series_id),
            billing.delete_draft(conn, other, ACCOUNTANT, NOW, invoice),
        ):
            with pytest.raises(billing.NotFound):
                await call
        await billing.delete_draft(conn, tenant, ACCOUNTANT, NOW, invoice)
        with pytest.raises(billing.NotFound):
            await billing.get_invoice(conn, tenant, invoice)


async def test_postpaid_customers_wait_for_their_period_to_end(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant, series_id = await company(conn)
        prepaid = await customer_of(conn, await add_point(conn, tenant, "HK1", so_khau=2))
        await add_point(conn, tenant, "HK2", so_khau=1)
        await conn.execute(
            "UPDATE customers SET billing_mode = 'prepaid' WHERE id = %s", (prepaid,)
        )
        july = D(2026, 7, 1)
        early = await billing.run_billing(conn, tenant, ACCOUNTANT, NOW, "monthly", july, series_id)
        assert (early.invoices_drafted, early.postpaid_waiting) == (1, 1)
        assert [d.customer_id for d in await drafts_of(conn, tenant)] == [prepaid]
        done = await billing.run_billing(
            conn, tenant, ACCOUNTANT, NOW, "monthly", july, series_id, today=D(2026, 8, 1)
        )
        assert (done.invoices_drafted, done.drafts_replaced, done.postpaid_waiting) == (2, 1, 0)
        (listed, *_) = await billing.list_billing_runs(conn, tenant)
        assert (listed.id, listed.drafts_replaced, listed.invoices_drafted) == (done.id, 1, 2)
