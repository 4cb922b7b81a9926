"""The city, its sites and route runs as an SVG picture: what a dispatcher would rather see
than read, with no drawing library (the live map draws the same GeoJSON in the browser)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from simulator.city import City, SiteKind, StreetClass
from simulator.routes import RoutePlan

WIDTH_PX = 1200
STREET_STYLE = {
    StreetClass.ARTERIAL: ("#6b7280", 2.6),
    StreetClass.STREET: ("#9ca3af", 1.4),
    StreetClass.ALLEY: ("#d1d5db", 0.8),
}
SITE_COLOUR = {
    SiteKind.DEPOT: "#2563eb",
    SiteKind.TRANSFER_STATION: "#d97706",
    SiteKind.LANDFILL: "#7c2d12",
}
ROUTE_COLOURS = ("#dc2626", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#ea580c")


def city_svg(city: City, plans: Sequence[RoutePlan] = (), title: str = "") -> str:
    """Streets by class (one-way ones dashed), sites, and each route run's path and stops."""
    xs = [city.node_xy(n)[0] for n in range(city.node_count())]
    ys = [city.node_xy(n)[1] for n in range(city.node_count())]
    west, east, south, north = min(xs) - 100, max(xs) + 100, min(ys) - 100, max(ys) + 100
    scale = WIDTH_PX / (east - west)
    height_px = round((north - south) * scale)

    def pixel(x: float, y: float) -> tuple[float, float]:
        return (x - west) * scale, (north - y) * scale

    def point(x: float, y: float) -> str:
        px, py = pixel(x, y)
        return f"{px:.1f},{py:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height_px}"'
        f' viewBox="0 0 {WIDTH_PX} {height_px}" font-family="sans-serif">',
        f'<rect width="{WIDTH_PX}" height="{height_px}" fill="#f9fafb"/>',
    ]
    for street_class in (StreetClass.ALLEY, StreetClass.STREET, StreetClass.ARTERIAL):
        colour, width = STREET_STYLE[street_class]
        for street in city.streets:
            if street.street_class is not street_class:
                continue
            dash = ' stroke-dasharray="4 3"' if street.one_way else ""
            parts.append(
                f'<polyline points="{point(*city.node_xy(street.start))}'
                f' {point(*city.node_xy(street.end))}" stroke="{colour}"'
                f' stroke-width="{width}"{dash} fill="none"/>'
            )
    for index, plan in enumerate(plans):
        colour = ROUTE_COLOURS[index % len(ROUTE_COLOURS)]
        path = " ".join(point(x, y) for x, y in plan.path_xy)
        parts.append(
            f'<polyline points="{path}" stroke="{colour}" stroke-width="2" fill="none"'
            ' stroke-opacity="0.75"/>'
        )
        for stop in plan.stops:
            if stop.point is not None:
                cx, cy = pixel(stop.x_m, stop.y_m)
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.2" fill="{colour}"/>')
    for kind, site in city.sites.items():
        ring = " ".join(point(*city.projection.to_xy(lat, lon)) for lat, lon in site.polygon)
        x, y = pixel(*city.node_xy(site.node))
        # labels near the right edge end at the site, so they stay in the picture
        anchor, dx = ("end", -8.0) if x > WIDTH_PX * 0.7 else ("start", 8.0)
        parts.append(
            f'<polygon points="{ring}" fill="{SITE_COLOUR[kind]}" fill-opacity="0.35"'
            f' stroke="{SITE_COLOUR[kind]}"/>'
            f'<text x="{x + dx:.1f}" y="{y - 8:.1f}" font-size="13" text-anchor="{anchor}"'
            f' fill="{SITE_COLOUR[kind]}" stroke="#ffffff" stroke-width="3"'
            f' paint-order="stroke">{escape(site.name)}</text>'
        )
    if title:
        parts.append(
            f'<text x="12" y="24" font-size="16" fill="#111827" stroke="#ffffff"'
            f' stroke-width="4" paint-order="stroke">{escape(title)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
