"""Geofences: a (lat, lon) ring becomes a closed GeoJSON polygon; bad rings are refused."""

from __future__ import annotations

import uuid

import pytest

import fleet
from storage import Pool

RING = ((20.970, 105.770), (20.971, 105.770), (20.971, 105.771), (20.970, 105.771))


def test_rings_close_and_bad_ones_are_refused() -> None:
    polygon = fleet.polygon_geojson(RING)
    assert polygon["coordinates"][0][0] == polygon["coordinates"][0][-1] == [105.770, 20.970]
    with pytest.raises(fleet.InvalidValue, match="at least 3"):
        fleet.polygon_geojson(RING[:2])
    with pytest.raises(fleet.InvalidValue, match="latitude/longitude"):
        fleet.polygon_geojson(((105.77, 20.97), (20.97, 105.77), (20.98, 105.77)))


async def test_ensure_geofence_updates_in_place(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "A")
        first = await fleet.ensure_geofence(
            conn, tenant.id, "Bãi xe", fleet.GeofenceKind.DEPOT, RING
        )
        moved = tuple((lat + 0.001, lon) for lat, lon in RING)
        again = await fleet.ensure_geofence(
            conn, tenant.id, "Bãi xe", fleet.GeofenceKind.DEPOT, moved
        )
        assert again == first
        [stored] = await fleet.list_geofences(conn, tenant.id)
        assert stored.ring[:4] == moved
        assert stored.kind is fleet.GeofenceKind.DEPOT
