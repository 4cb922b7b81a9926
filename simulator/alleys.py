"""Alleys (ngõ): dead ends into every block from two opposite sides, and through alleys.

Each block gets entrances along two opposite sides, pointing inwards and
stopping short of the middle, so alleys from opposite sides never meet; every
alley keeps clear of the block's other alleys and streets, so no two streets
ever cross between nodes.
"""

from __future__ import annotations

import math

from simulator.plane import Point, cross, segment_distance
from simulator.streets import AlleyEntrance, Block, Layout, Side

ALLEY_LENGTH_M = (40.0, 150.0)
ALLEY_SPACING_M = (60.0, 140.0)  # between alley entrances along one side of a block
ALLEY_CORNER_MARGIN_M = 25.0  # no alley entrance this close to a block corner
ALLEY_CLEARANCE_M = 10.0  # from other alleys and from the block's streets
ALLEY_SAME_SIDE_M = 30.0  # between a dead end's entrance and a through alley's
CONNECTING_ALLEY_SHARE = 0.15  # blocks crossed by a through alley (ngõ thông)


def draw_alleys(layout: Layout) -> None:
    for block in layout.blocks:
        _BlockAlleys(layout, block).draw()


class _BlockAlleys:
    """The alleys of one block: entrances on two opposite sides, pointing inwards."""

    # Sides by index: bottom, top, left, right, as (first corner, second corner).
    _ENDS = ((0, 1), (3, 2), (0, 3), (1, 2))
    _OPPOSITE = (1, 0, 3, 2)

    def __init__(self, layout: Layout, block: Block) -> None:
        self.layout = layout
        self.block = block
        self.quad = block.corners
        self.centre = (sum(p[0] for p in self.quad) / 4, sum(p[1] for p in self.quad) / 4)
        self.drawn: list[tuple[Point, Point]] = []

    def draw(self) -> None:
        rng = self.layout.rng
        pair = (0, 1) if rng.random() < 0.5 else (2, 3)
        taken: dict[int, list[float]] = {pair[0]: [], pair[1]: []}  # fractions of a side used
        if rng.random() < CONNECTING_ALLEY_SHARE:
            fraction = rng.uniform(0.3, 0.7)
            other = fraction + rng.uniform(-0.05, 0.05)
            if self._through_alley(pair, (fraction, other)):
                taken[pair[0]].append(fraction)
                taken[pair[1]].append(other)
        for side in pair:
            if self.block.sides[side] is None:
                continue
            length = math.dist(*self._corners(side))
            along = ALLEY_CORNER_MARGIN_M + rng.uniform(0, ALLEY_SPACING_M[0])
            while along < length - ALLEY_CORNER_MARGIN_M:
                fraction = along / length
                if all(abs(fraction - t) * length >= ALLEY_SAME_SIDE_M for t in taken[side]):
                    self._dead_end(side, fraction)
                along += rng.uniform(*ALLEY_SPACING_M)

    def _corners(self, side: int) -> tuple[Point, Point]:
        first, second = self._ENDS[side]
        return self.quad[first], self.quad[second]

    def _on_side(self, side: int, fraction: float) -> tuple[Side, float, Point]:
        """The street run of a side, the fraction of the run, and the point there."""
        street = self.block.sides[side]
        assert street is not None  # callers skip sides without a street
        run_fraction = street.f0 + fraction * (street.f1 - street.f0)
        return street, run_fraction, self.layout.point_on(street.run, run_fraction)

    def _dead_end(self, side: int, fraction: float) -> None:
        layout, rng = self.layout, self.layout.rng
        street, run_fraction, entrance = self._on_side(side, fraction)
        if not layout.can_attach(street.run, run_fraction) or layout.in_keep_out(entrance):
            return
        inward = self._inward(side)
        angle = math.radians(rng.uniform(-8.0, 8.0))
        direction = (
            inward[0] * math.cos(angle) - inward[1] * math.sin(angle),
            inward[0] * math.sin(angle) + inward[1] * math.cos(angle),
        )
        depth = _ray_hits_line(entrance, direction, *self._corners(self._OPPOSITE[side]))
        # Alleys from opposite sides stop short of the middle, so they never meet.
        longest = min(ALLEY_LENGTH_M[1], 0.42 * depth)
        if longest < ALLEY_LENGTH_M[0]:
            return
        length = rng.uniform(ALLEY_LENGTH_M[0], longest)
        end = (entrance[0] + direction[0] * length, entrance[1] + direction[1] * length)
        if not self._fits(entrance, end):
            return
        node, _ = layout.attach(street.run, run_fraction)
        line = layout.alley_line(self._entrance(street, run_fraction, end))
        layout.add_run(line, node, layout.add_node(*end))
        self.drawn.append((entrance, end))

    def _through_alley(self, pair: tuple[int, int], fractions: tuple[float, float]) -> bool:
        """A ngõ thông from one side to the opposite one, with a kink halfway."""
        layout, rng = self.layout, self.layout.rng
        if self.block.sides[pair[0]] is None or self.block.sides[pair[1]] is None:
            return False
        street_a, run_fraction_a, a = self._on_side(pair[0], fractions[0])
        street_b, run_fraction_b, b = self._on_side(pair[1], fractions[1])
        length = math.dist(a, b)
        bend = rng.uniform(-6.0, 6.0)
        middle = (
            (a[0] + b[0]) / 2 - (b[1] - a[1]) / length * bend,
            (a[1] + b[1]) / 2 + (b[0] - a[0]) / length * bend,
        )
        if not (
            layout.can_attach(street_a.run, run_fraction_a)
            and layout.can_attach(street_b.run, run_fraction_b)
            and not any(layout.in_keep_out(p) for p in (a, middle, b))
            and self._fits(a, middle)
            and self._fits(b, middle)
        ):
            return False
        node_a, _ = layout.attach(street_a.run, run_fraction_a)
        node_b, _ = layout.attach(street_b.run, run_fraction_b)
        line = layout.alley_line(self._entrance(street_a, run_fraction_a, middle))
        node_middle = layout.add_node(*middle)
        layout.add_run(line, node_a, node_middle)
        layout.add_run(line, node_middle, node_b)
        self.drawn += [(a, middle), (middle, b)]
        return True

    def _inward(self, side: int) -> Point:
        (x0, y0), (x1, y1) = self._corners(side)
        length = math.hypot(x1 - x0, y1 - y0)
        normal = (-(y1 - y0) / length, (x1 - x0) / length)
        if normal[0] * (self.centre[0] - x0) + normal[1] * (self.centre[1] - y0) < 0:
            normal = (-normal[0], -normal[1])
        return normal

    def _fits(self, entrance: Point, end: Point) -> bool:
        """The alley's far end stays well inside the block and clear of its other alleys."""
        for k in range(4):
            p, q = self.quad[k], self.quad[(k + 1) % 4]
            # The corners are counter-clockwise, so inside is to the left of every side.
            if cross(p, q, end) / math.dist(p, q) < ALLEY_CLEARANCE_M:
                return False
        return all(
            segment_distance(entrance, end, p, q) >= ALLEY_CLEARANCE_M for p, q in self.drawn
        )

    def _entrance(self, street: Side, run_fraction: float, towards: Point) -> AlleyEntrance:
        run = self.layout.runs[street.run]
        left = cross(self.layout.xy[run.start], self.layout.xy[run.end], towards) > 0
        return AlleyEntrance(run.line, street.run, run_fraction, left)


def _ray_hits_line(origin: Point, direction: Point, a: Point, b: Point) -> float:
    """Distance along the ray to the line through a and b (inf when parallel or behind)."""
    ex, ey = b[0] - a[0], b[1] - a[1]
    denominator = direction[0] * ey - direction[1] * ex
    if abs(denominator) < 1e-12:
        return math.inf
    t = ((a[0] - origin[0]) * ey - (a[1] - origin[1]) * ex) / denominator
    return t if t > 0 else math.inf
