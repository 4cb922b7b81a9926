"""A plan as an SVG picture: the streets, each route's path and stops in its own colour,
the stops left unserved as red crosses, and a legend line per route (`sanitrack plan --svg`).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from geo.projection import LocalProjection
from planning.dataset import LOCAL_ZONE
from planning.models import NewRouteRun, RouteRun, StopKind
from planning.streets import MapStreet, StreetKind

WIDTH_PX = 1200
STREET_STYLE = {
    StreetKind.ARTERIAL: ("#6b7280", 2.4),
    StreetKind.PRIMARY: ("#6b7280", 2.0),
    StreetKind.SECONDARY: ("#9ca3af", 1.3),
    StreetKind.RESIDENTIAL: ("#b6bcc6", 1.0),
    StreetKind.ALLEY: ("#d1d5db", 0.7),
    StreetKind.OTHER: ("#d1d5db", 0.7),
}
ROUTE_COLOURS = ("#dc2626", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#ea580c")


def plan_svg(
    streets: Sequence[MapStreet],
    runs: Sequence[RouteRun | NewRouteRun],
    unserved: Sequence[tuple[float, float]] = (),
    title: str = "",
) -> str:
    """``unserved``: (lat, lon) of the stops no route serves."""
    lonlat = [p for street in streets for p in street.line]
    lonlat += [p for run in runs for p in run.expected_path]
    lonlat += [(lon, lat) for lat, lon in unserved]
    if not lonlat:
        lonlat = [(0.0, 0.0)]
    lons, lats = [p[0] for p in lonlat], [p[1] for p in lonlat]
    projection = LocalProjection((min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2)
    xy = [projection.to_xy(lat, lon) for lon, lat in lonlat]
    west, east = min(x for x, _ in xy) - 100, max(x for x, _ in xy) + 100
    south, north = min(y for _, y in xy) - 100, max(y for _, y in xy) + 100
    scale = WIDTH_PX / (east - west)
    legend_px = 22 * (len(runs) + 1)
    height_px = round((north - south) * scale) + legend_px

    def pixel(lon: float, lat: float) -> tuple[float, float]:
        x, y = projection.to_xy(lat, lon)
        return (x - west) * scale, (north - y) * scale

    def point(lon: float, lat: float) -> str:
        px, py = pixel(lon, lat)
        return f"{px:.1f},{py:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height_px}"'
        f' viewBox="0 0 {WIDTH_PX} {height_px}" font-family="sans-serif">',
        f'<rect width="{WIDTH_PX}" height="{height_px}" fill="#f9fafb"/>',
    ]
    for street in streets:
        colour, width = STREET_STYLE[street.kind]
        dash = ' stroke-dasharray="4 3"' if street.one_way else ""
        line = " ".join(point(lon, lat) for lon, lat in street.line)
        parts.append(
            f'<polyline points="{line}" stroke="{colour}" stroke-width="{width}"{dash}'
            ' fill="none"/>'
        )
    for index, run in enumerate(runs):
        colour = ROUTE_COLOURS[index % len(ROUTE_COLOURS)]
        path = " ".join(point(lon, lat) for lon, lat in run.expected_path)
        parts.append(
            f'<polyline points="{path}" stroke="{colour}" stroke-width="2.2" fill="none"'
            ' stroke-opacity="0.8"/>'
        )
        for stop in run.stops:
            sx, sy = pixel(stop.lon, stop.lat)
            if stop.kind is StopKind.UNLOAD:
                parts.append(
                    f'<rect x="{sx - 5:.1f}" y="{sy - 5:.1f}" width="10"'
                    f' height="10" fill="{colour}" stroke="#111827"/>'
                )
            else:
                parts.append(f'<circle cx="{sx:.1f}" cy="{sy:.1f}" r="2.6" fill="{colour}"/>')
        collects = sum(stop.kind is StopKind.COLLECT for stop in run.stops)
        y = height_px - legend_px + 22 * (index + 1)
        parts.append(
            f'<rect x="12" y="{y - 11}" width="18" height="6" fill="{colour}"/>'
            f'<text x="38" y="{y - 4}" font-size="13" fill="#111827">{escape(run.name)}:'
            f" {collects} stops, {run.path_length_m / 1000:.1f} km,"
            f" {run.planned_start.astimezone(LOCAL_ZONE):%H:%M}"
            f"–{run.planned_end.astimezone(LOCAL_ZONE):%H:%M}</text>"
        )
    for lat, lon in unserved:
        cx, cy = pixel(lon, lat)
        parts.append(
            f'<path d="M{cx - 5:.1f},{cy - 5:.1f} L{cx + 5:.1f},{cy + 5:.1f}'
            f' M{cx - 5:.1f},{cy + 5:.1f} L{cx + 5:.1f},{cy - 5:.1f}" stroke="#b91c1c"'
            ' stroke-width="2.5"/>'
        )
    if title:
        parts.append(
            f'<text x="12" y="24" font-size="16" fill="#111827" stroke="#ffffff"'
            f' stroke-width="4" paint-order="stroke">{escape(title)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
