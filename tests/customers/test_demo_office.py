"""The demo's office: the simulated city's customers get areas, collectors, tariffs and
this month's charges through the office's own services, once."""

from __future__ import annotations

import datetime as dt

import billing
import customers
import fleet
from sanitrack.demo_office import prepare_invoices, prepare_office
from sanitrack.settings import CustomersSettings
from simulator import ScenarioConfig, build_scenario, register_scenario
from storage import Pool

NOW = dt.datetime(2026, 12, 5, 3, 0, tzinfo=dt.UTC)


async def test_the_city_becomes_a_billed_book_once(pool: Pool) -> None:
    config = ScenarioConfig(seed=5, vehicles=2, phones=4, stops_per_run=10, tenant="demo-office")
    scenario = build_scenario(config, NOW, 600)
    await register_scenario(pool, scenario)
    book = await prepare_office(pool, "demo-office", NOW, CustomersSettings())
    assert book.points == len(scenario.points)
    assert book.areas == len({p.ward for p in scenario.points})
    assert book.tariffs == 10
    assert book.charged_points == book.points
    async with pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, "demo-office")
        points = await customers.list_service_points(conn, tenant.id, limit=100_000)
        assert all(p.area_id is not None and p.collector_staff_id is not None for p in points)
        household = next(p for p in points if p.kind == customers.CustomerKind.HOUSEHOLD)
        charges = await billing.charges_of(conn, tenant.id, service_point_id=household.id)
    # Billed since January: December's charge is a whole month at 6,000 per resident.
    assert [(c.period_start, c.amount_vnd) for c in charges] == [
        (dt.date(2026, 12, 1), 6_000 * (household.so_khau or 0))
    ]
    again = await prepare_office(pool, "demo-office", NOW, CustomersSettings())
    assert (again.tariffs, again.charged_vnd) == (0, book.charged_vnd)
    invoiced = await prepare_invoices(pool, "demo-office", NOW, CustomersSettings())
    # November billed and issued on this year's series, one invoice per customer
    assert (invoiced.series, invoiced.period_start) == ("1C26TAA", dt.date(2026, 11, 1))
    assert invoiced.issued == invoiced.drafted == len(scenario.points)
    assert invoiced.total_vnd > 0
    assert (await prepare_invoices(pool, "demo-office", NOW, CustomersSettings())).issued == 0
