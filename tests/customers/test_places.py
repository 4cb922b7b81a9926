"""Where customers are: geocoding a changed address, bulk moves, the collector's book and
the customer map."""

from __future__ import annotations

import datetime as dt

import pytest

import audit
import customers
import planning
from customers import PointFilter, PositionSource, Viewport
from geo import haversine_m
from storage import Pool
from tests.customers.book import AT, CLERK, household, make_book

TOMORROW = AT.date() + dt.timedelta(days=1)
# An east-west street 1 km long at Hà Đông's latitude.
WEST = (105.770, 20.970)
EAST = (105.7796, 20.970)


async def _streets(pool: Pool, tenant_id: int) -> None:
    async with pool.connection() as conn:
        await planning.save_street_map(
            conn, tenant_id,
            [planning.MapStreet("Nguyễn Trãi", planning.StreetKind.ARTERIAL, False, (WEST, EAST)),
             planning.MapStreet("Trãi", planning.StreetKind.ALLEY, False,
                                ((105.77, 20.98), (105.771, 20.98)))],
            planning.StreetSource.SIMULATOR,
        )  # fmt: skip


async def test_a_new_address_is_placed_on_its_street_by_house_number(pool: Pool) -> None:
    book = await make_book(pool, "places-a")
    await _streets(pool, book.tenant_id)
    async with pool.connection() as conn:
        created = await customers.create_customer(
            conn, book.tenant_id, CLERK, AT, household("KH1", "A", lat=21.0, lon=105.0)
        )
        point = (await customers.points_of(conn, book.tenant_id, created.id))[0]
        moved = await customers.update_point(
            conn, book.tenant_id, CLERK, AT, point.id,
            {"address": "Số 21 đường NGUYEN TRAI, Hà Đông", "street": ""},
            geocoder=customers.StreetGeocoder(house_frontage_m=4.5),
        )  # fmt: skip
    # House 21 is the 11th on its side: 10 frontages and a half from the street's start.
    along = haversine_m(WEST[1], WEST[0], moved.lat, moved.lon)
    assert along == pytest.approx(47.25, abs=0.5)
    assert moved.position_source == PositionSource.GEOCODED
    assert not moved.position_needs_fix
    assert moved.position_accuracy_m == pytest.approx(19.0)


async def test_an_address_on_no_known_street_asks_for_a_fix(pool: Pool) -> None:
    book = await make_book(pool, "places-b")
    await _streets(pool, book.tenant_id)
    async with pool.connection() as conn:
        created = await customers.create_customer(
            conn, book.tenant_id, CLERK, AT, household("KH1", "A", lat=21.0, lon=105.0)
        )
        point = (await customers.points_of(conn, book.tenant_id, created.id))[0]
        moved = await customers.update_point(
            conn, book.tenant_id, CLERK, AT, point.id,
            {"address": "Số 3 Lê Lợi", "street": "Lê Lợi"},
            geocoder=customers.StreetGeocoder(),
        )  # fmt: skip
    assert (moved.lat, moved.lon) == (21.0, 105.0)  # kept until a collector captures it
    assert moved.position_needs_fix


async def test_points_move_between_areas_and_collectors_in_bulk(pool: Pool) -> None:
    book = await make_book(pool, "places-c")
    first, second = book.collector_ids
    async with pool.connection() as conn:
        ids = []
        for n in range(4):
            created = await customers.create_customer(
                conn, book.tenant_id, CLERK, AT,
                household(f"KH{n}", f"Hộ {n}", area_id=book.area_id, collector=first),
            )  # fmt: skip
            ids.append((await customers.points_of(conn, book.tenant_id, created.id))[0].id)
        await customers.set_book_order(conn, book.tenant_id, CLERK, AT, first, ids[::-1])
        assert [p.id for p in await customers.collector_book(conn, book.tenant_id, first)] == (
            ids[::-1]
        )
        # Late in the evening (UTC) is already tomorrow in Hà Nội: the company's date counts.
        moved = await customers.move_points(
            conn, book.tenant_id, CLERK, AT, ids[:2],
            area_id=book.rural_area_id, collector_staff_id=second, today=TOMORROW,
        )  # fmt: skip
        assert moved == 2
        assert [p.id for p in await customers.collector_book(conn, book.tenant_id, first)] == [
            ids[3],
            ids[2],
        ]
        assert {p.id for p in await customers.collector_book(conn, book.tenant_id, second)} == set(
            ids[:2]
        )
        # The rural area bills differently from today on.
        found = await customers.terms_of(conn, book.tenant_id, ids[0])
        assert [(t.valid_from, t.area_group) for t in found] == [
            (dt.date(2026, 1, 1), "urban"),
            (TOMORROW, "rural"),
        ]
        entries = await audit.history(
            conn, book.tenant_id, entity="service_point", entity_id=ids[0]
        )
        assert entries[0].action == "move"
        assert entries[0].after == {"area_id": book.rural_area_id, "collector_staff_id": second}
        # Moving them again to where they are changes nothing.
        assert (
            await customers.move_points(
                conn, book.tenant_id, CLERK, AT, ids[:2], collector_staff_id=second
            )
            == 0
        )


async def test_bulk_moves_and_book_orders_refuse_what_is_not_theirs(pool: Pool) -> None:
    book = await make_book(pool, "places-d")
    other = await make_book(pool, "places-d2")
    first, _ = book.collector_ids
    async with pool.connection() as conn:
        created = await customers.create_customer(
            conn,
            other.tenant_id,
            CLERK,
            AT,
            household("KH1", "A", collector=other.collector_ids[0]),
        )
        theirs = (await customers.points_of(conn, other.tenant_id, created.id))[0].id
        with pytest.raises(customers.InvalidValue, match=r"^point_ids: no service point"):
            await customers.move_points(
                conn, book.tenant_id, CLERK, AT, [theirs], collector_staff_id=first
            )
        with pytest.raises(customers.InvalidValue, match=r"^staff_id: no staff member"):
            await customers.set_book_order(
                conn, book.tenant_id, CLERK, AT, other.collector_ids[0], [theirs]
            )
        with pytest.raises(customers.InvalidValue, match=r"^point_ids: service point"):
            await customers.set_book_order(conn, book.tenant_id, CLERK, AT, first, [theirs])


async def test_the_map_shows_points_up_close_and_clusters_from_afar(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = await make_book(pool, "places-e")
    async with pool.connection() as conn:
        for n in range(30):
            await customers.create_customer(
                conn, book.tenant_id, CLERK, AT,
                household(f"KH{n:02}", f"Hộ {n}", lat=20.97 + (n % 10) * 0.001,
                          lon=105.77 + (n // 10) * 0.05),
            )  # fmt: skip
        close = Viewport(south=20.96, west=105.76, north=20.99, east=105.78, zoom=16)
        view = await customers.map_view(conn, book.tenant_id, close)
        assert len(view["points"]) == 10
        assert view["clusters"] == []
        assert {p["collected"] for p in view["points"]} == {None}
        # Past the page size, clusters: three columns of ten 50 m apart, 5 km between them.
        monkeypatch.setattr("customers.map.MAX_MAP_POINTS", 5)
        far = Viewport(south=20.9, west=105.7, north=21.1, east=105.9, zoom=12)
        view = await customers.map_view(conn, book.tenant_id, far)
        assert view["points"] == []
        assert sorted(c["count"] for c in view["clusters"]) == [10, 10, 10]
        assert view["clusters_as_of"] is None  # counted from the points: no cells yet
        filtered = await customers.map_view(
            conn, book.tenant_id, far, filters=PointFilter(area_id=book.area_id)
        )
        assert filtered == {"clusters": [], "points": [], "clusters_as_of": None}
        # Counted ahead: the same clusters from the cells, and a new point marks them stale.
        assert await customers.rebuild_cells(conn, book.tenant_id, AT) > 0
        assert (await customers.cells_state(conn, book.tenant_id)).stale_since is None
        counted = await customers.map_view(conn, book.tenant_id, far)
        assert counted["clusters_as_of"] == AT
        assert sorted(c["count"] for c in counted["clusters"]) == [10, 10, 10]
        assert sorted((round(c["lat"], 4), round(c["lon"], 4)) for c in counted["clusters"]) == (
            sorted((round(c["lat"], 4), round(c["lon"], 4)) for c in view["clusters"])
        )
        suspended = await customers.map_view(
            conn, book.tenant_id, far, filters=PointFilter(status=customers.Status.SUSPENDED)
        )
        assert suspended["clusters"] == []
        await conn.commit()
        await customers.create_customer(conn, book.tenant_id, CLERK, AT, household("KH99", "B"))
        await conn.commit()
        assert (await customers.cells_state(conn, book.tenant_id)).stale_since is not None
