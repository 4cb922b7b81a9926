"""What the live map needs to draw its basemap: the configuration and the street network."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

import fleet
import planning
from api.context import Ctx, Reader

router = APIRouter(prefix="/api/v1/map", tags=["map"])

# Hà Đông, Hanoi: where the map opens when a tenant has nothing to bound it yet.
DEFAULT_CENTER = (20.9714, 105.7788)


@router.get("/config")
async def map_config(principal: Reader, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        tenant = await fleet.get_tenant_by_id(conn, principal.tenant_id)
        bounds = await planning.street_map_bounds(conn, principal.tenant_id)
    center = DEFAULT_CENTER
    if bounds is not None:
        south, west, north, east = bounds
        center = ((south + north) / 2, (west + east) / 2)
    return {
        "tile_url": ctx.settings.map_tile_url,
        "tile_attribution": ctx.settings.map_tile_attribution,
        "bounds": [[bounds[0], bounds[1]], [bounds[2], bounds[3]]] if bounds else None,
        "center": list(center),
        "zoom": 15,
        "offline_after_s": 180,
        "timezone": "Asia/Ho_Chi_Minh",
        "tenant": {"slug": tenant.slug, "name": tenant.name},
    }


@router.get("/streets")
async def streets(principal: Reader, ctx: Ctx) -> Response:
    """GeoJSON FeatureCollection of the street network: the offline basemap."""
    async with ctx.pool.connection() as conn:
        body = await planning.street_map_geojson(conn, principal.tenant_id)
    return Response(
        body, media_type="application/geo+json", headers={"Cache-Control": "private, max-age=300"}
    )
