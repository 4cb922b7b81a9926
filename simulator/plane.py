"""Plane geometry on (x, y) metre tuples: the few predicates the layout and placement need."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

Point = tuple[float, float]


def cross(p: Point, q: Point, r: Point) -> float:
    """Twice the signed area of p, q, r: positive when r is left of p -> q."""
    return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])


def point_segment_distance(p: Point, a: Point, b: Point) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length_sq = dx * dx + dy * dy
    t = 0.0 if length_sq == 0 else ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length_sq
    t = min(1.0, max(0.0, t))
    return math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy)


def segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segments a-b and c-d properly cross (touching at an end does not count)."""
    return (cross(a, b, c) > 0) != (cross(a, b, d) > 0) and (cross(c, d, a) > 0) != (
        cross(c, d, b) > 0
    )


def segment_distance(a: Point, b: Point, c: Point, d: Point) -> float:
    if segments_cross(a, b, c, d):
        return 0.0
    return min(
        point_segment_distance(a, c, d),
        point_segment_distance(b, c, d),
        point_segment_distance(c, a, b),
        point_segment_distance(d, a, b),
    )


def signed_area(ring: Sequence[Point]) -> float:
    """Shoelace area of a closed or open ring: positive when counter-clockwise."""
    return 0.5 * sum(p[0] * q[1] - q[0] * p[1] for p, q in itertools.pairwise([*ring, ring[0]]))


def inside_convex(p: Point, ring: Sequence[Point]) -> bool:
    """Whether p is inside (or on) a closed counter-clockwise convex ring."""
    return all(cross(a, b, p) >= 0 for a, b in itertools.pairwise(ring))


def distance_to_convex(p: Point, ring: Sequence[Point]) -> float:
    """Distance from p to a closed counter-clockwise convex ring's area (0 inside)."""
    if inside_convex(p, ring):
        return 0.0
    return min(point_segment_distance(p, a, b) for a, b in itertools.pairwise(ring))


def segment_to_convex(a: Point, b: Point, ring: Sequence[Point]) -> float:
    """Distance from segment a-b to a closed counter-clockwise convex ring's area (0 if
    they meet)."""
    if inside_convex(a, ring) or inside_convex(b, ring):
        return 0.0
    return min(segment_distance(a, b, c, d) for c, d in itertools.pairwise(ring))
