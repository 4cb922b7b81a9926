"""The drawing board of the synthetic district, and its arterial and street grid.

Drawn in the local projection's metres (x east, y north, district centred on
the origin) from one `random.Random(seed)`, consuming it in a fixed order, so
the same seed always gives the same layout.

The layout is built from *lines* (a named road: "Đường Quang Trung", "Phố Tô
Hiệu", "Ngõ 12 Tô Hiệu") made of straight *runs*. Whatever later meets a run
(a street ending on an arterial, an alley entrance) registers a stop on it;
at the end every run is split at its stops, so each `Street` goes from node
to node. `simulator.sites`, `simulator.alleys` and `simulator.one_way` add
the rest; `simulator.city.generate_city` runs the steps in order.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from simulator import names
from simulator.network import Street, StreetClass
from simulator.plane import Point

ARTERIAL_SPACING_M = 800.0
STREET_SPACING_M = (150.0, 240.0)  # drawn once per superblock and direction
NODE_JITTER_M = 15.0  # street crossings move this much off the straight lines
SHORT_STREET_SHARE = 0.3  # streets that stop one block short of an arterial
# A street meeting an arterial this close to another junction on the other side
# joins that junction: a crossroads instead of two T-junctions a few metres apart.
JUNCTION_MERGE_M = 25.0
# No street segment shorter than this is created by an alley entrance.
ENTRANCE_GAP_M = 12.0
# House numbers run odd on the left, even on the right, one number per side every 4.5 m;
# an alley takes the number its entrance would have ("Ngõ 12 Tô Hiệu").
HOUSE_FRONTAGE_M = 4.5


@dataclass(frozen=True, slots=True)
class AlleyEntrance:
    """Where an alley leaves its parent street: used to number it like a house."""

    parent_line: int
    run: int
    fraction: float
    left: bool  # the alley leaves to the left of the run's direction


@dataclass(slots=True)
class Line:
    name: str  # the full name; alleys get theirs once numbered
    base_name: str  # what alleys off this line are named after
    street_class: StreetClass
    speed_kmh: float
    gps_noise_m: float
    runs: list[int] = field(default_factory=list)
    one_way_sense: int = 1  # the direction it would get if made one-way: +1 along, -1 against
    direction: int = 0  # 0 two-way; +1 / -1 one-way along / against the order of its runs
    entrance: AlleyEntrance | None = None
    alley_numbers: set[int] = field(default_factory=set)


@dataclass(slots=True)
class Run:
    line: int
    start: int
    end: int
    stops: list[tuple[float, int]] = field(default_factory=list)  # (fraction, node)


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a block: the stretch of `run` between fractions f0 and f1."""

    run: int
    f0: float
    f1: float


@dataclass(frozen=True, slots=True)
class Block:
    corners: tuple[Point, Point, Point, Point]  # counter-clockwise from the south-west corner
    # Bottom, top (west to east); left, right (south to north). None: no street there.
    sides: tuple[Side | None, Side | None, Side | None, Side | None]


class Layout:
    """The mutable drawing board: nodes, lines, runs and blocks, filled in step by step."""

    def __init__(self, seed: int, width_m: float, height_m: float) -> None:
        self.rng = random.Random(seed)
        self.half_width_m = width_m / 2
        self.half_height_m = height_m / 2
        self.xy: list[Point] = []
        self.lines: list[Line] = []
        self.runs: list[Run] = []
        self.blocks: list[Block] = []
        self.arterial_stops: dict[int, int] = {}  # node -> arterial run it splits
        self.grid_arterial_runs: list[int] = []
        self.keep_out: list[tuple[Point, float]] = []  # sites: (centre, radius) free of alleys
        self._street_names = _name_supply(names.STREET_NAMES, self.rng)

    # ---------------------------------------------------------------- primitives

    def add_node(self, x: float, y: float) -> int:
        self.xy.append((x, y))
        return len(self.xy) - 1

    def add_line(
        self,
        name: str,
        base_name: str,
        street_class: StreetClass,
        speed_kmh: float,
        gps_noise_m: float,
    ) -> int:
        self.lines.append(Line(name, base_name, street_class, speed_kmh, gps_noise_m))
        return len(self.lines) - 1

    def add_run(self, line: int, start: int, end: int) -> int:
        self.runs.append(Run(line, start, end))
        self.lines[line].runs.append(len(self.runs) - 1)
        return len(self.runs) - 1

    def run_length(self, run: int) -> float:
        r = self.runs[run]
        return math.dist(self.xy[r.start], self.xy[r.end])

    def point_on(self, run: int, fraction: float) -> Point:
        r = self.runs[run]
        (x0, y0), (x1, y1) = self.xy[r.start], self.xy[r.end]
        # This form keeps a point on the district's straight edge exactly on it.
        return x0 + (x1 - x0) * fraction, y0 + (y1 - y0) * fraction

    def attach(self, run: int, fraction: float, merge_m: float = 0.0) -> tuple[int, float]:
        """A node on `run` at `fraction`, reusing a stop within `merge_m` metres."""
        length = self.run_length(run)
        for stop_fraction, node in self.runs[run].stops:
            if abs(stop_fraction - fraction) * length <= merge_m:
                return node, stop_fraction
        node = self.add_node(*self.point_on(run, fraction))
        self.runs[run].stops.append((fraction, node))
        return node, fraction

    def can_attach(self, run: int, fraction: float, gap_m: float = ENTRANCE_GAP_M) -> bool:
        length = self.run_length(run)
        if min(fraction, 1 - fraction) * length < gap_m:
            return False
        return all(abs(f - fraction) * length >= gap_m for f, _ in self.runs[run].stops)

    def edge_distance_m(self, x: float, y: float) -> float:
        """How far inside the district a point is (negative outside)."""
        return min(self.half_width_m - abs(x), self.half_height_m - abs(y))

    def segments(self) -> list[tuple[int, int, int]]:
        """(line, from node, to node) of every run split at its stops, in line order."""
        out: list[tuple[int, int, int]] = []
        for line_id, line in enumerate(self.lines):
            for run_id in line.runs:
                run = self.runs[run_id]
                chain = [run.start, *(node for _, node in sorted(run.stops)), run.end]
                out.extend((line_id, a, b) for a, b in itertools.pairwise(chain))
        return out

    # ---------------------------------------------------------------- the grid

    def draw_grid(self) -> None:
        """Arterials every ~800 m; in each superblock between them, streets every ~200 m."""
        rng = self.rng
        nx = max(1, round(2 * self.half_width_m / ARTERIAL_SPACING_M))
        ny = max(1, round(2 * self.half_height_m / ARTERIAL_SPACING_M))
        xs = _spread(-self.half_width_m, self.half_width_m, nx, rng)
        ys = _spread(-self.half_height_m, self.half_height_m, ny, rng)
        # The district edge stays straight; inner arterials bend a little at each crossing.
        corner = [
            [
                self.add_node(
                    xs[i] + (rng.uniform(-25, 25) if 0 < i < nx else 0.0),
                    ys[j] + (rng.uniform(-25, 25) if 0 < j < ny else 0.0),
                )
                for j in range(ny + 1)
            ]
            for i in range(nx + 1)
        ]
        arterial_names = _name_supply(names.ARTERIAL_NAMES, rng)
        vertical: list[list[int]] = []  # [i][j]: arterial x=i from row j to j + 1
        for i in range(nx + 1):
            line = self._arterial_line(next(arterial_names))
            vertical.append([self.add_run(line, corner[i][j], corner[i][j + 1]) for j in range(ny)])
        horizontal: list[list[int]] = []  # [j][i]: arterial y=j from column i to i + 1
        for j in range(ny + 1):
            line = self._arterial_line(next(arterial_names))
            horizontal.append(
                [self.add_run(line, corner[i][j], corner[i + 1][j]) for i in range(nx)]
            )
        self.grid_arterial_runs = [r for row in vertical + horizontal for r in row]
        for j in range(ny):
            for i in range(nx):
                self._superblock(
                    i,
                    j,
                    bottom=horizontal[j][i],
                    top=horizontal[j + 1][i],
                    left=vertical[i][j],
                    right=vertical[i + 1][j],
                )

    def _arterial_line(self, name: str) -> int:
        rng = self.rng
        speed = float(round(rng.uniform(30, 40)))
        noise = round(rng.uniform(4.0, 6.0), 1)
        return self.add_line(f"Đường {name}", name, StreetClass.ARTERIAL, speed, noise)

    def _street_line(self, sense: int) -> int:
        rng = self.rng
        name = next(self._street_names)
        speed = float(round(rng.uniform(18, 25)))
        noise = round(rng.uniform(8.0, 15.0), 1)
        line = self.add_line(f"Phố {name}", name, StreetClass.STREET, speed, noise)
        self.lines[line].one_way_sense = sense
        return line

    def _superblock(self, i: int, j: int, *, bottom: int, top: int, left: int, right: int) -> None:
        """Streets inside the quadrilateral between four arterial runs, and its blocks."""
        rng = self.rng
        c00, c10 = self.xy[self.runs[bottom].start], self.xy[self.runs[bottom].end]
        c01, c11 = self.xy[self.runs[top].start], self.xy[self.runs[top].end]

        def bilinear(u: float, v: float) -> Point:
            w00, w10, w01, w11 = (1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v
            return (
                w00 * c00[0] + w10 * c10[0] + w01 * c01[0] + w11 * c11[0],
                w00 * c00[1] + w10 * c10[1] + w01 * c01[1] + w11 * c11[1],
            )

        width = (math.dist(c00, c10) + math.dist(c01, c11)) / 2
        height = (math.dist(c00, c01) + math.dist(c10, c11)) / 2
        # Grid position (a, b): column a (0 and kx + 1 are the arterials), row b.
        columns = _street_fractions(width, rng)  # (u at the bottom, u at the top)
        rows = _street_fractions(height, rng)  # (v on the left, v on the right)
        kx, ky = len(columns), len(rows)
        # Some streets stop one block short of an arterial, in a T on a cross street:
        # the index of the run they lose.
        short_columns = {
            a: rng.choice((0, ky))
            for a in range(1, kx + 1)
            if ky > 0 and rng.random() < SHORT_STREET_SHARE
        }
        short_rows = {
            b: rng.choice((0, kx))
            for b in range(1, ky + 1)
            if kx > 0 and rng.random() < SHORT_STREET_SHARE
        }

        node: dict[tuple[int, int], int] = {
            (0, 0): self.runs[bottom].start,
            (kx + 1, 0): self.runs[bottom].end,
            (0, ky + 1): self.runs[top].start,
            (kx + 1, ky + 1): self.runs[top].end,
        }
        point: dict[tuple[int, int], Point] = {key: self.xy[n] for key, n in node.items()}
        # Fractions of the arterial runs at each column or row, for the blocks' sides.
        bottom_f, top_f, left_f, right_f = [0.0], [0.0], [0.0], [0.0]
        # Where streets meet the arterials: (grid position, arterial run, fraction of it,
        # whether the street reaches it, the fractions of that side).
        meetings: list[tuple[tuple[int, int], int, float, bool, list[float]]] = []
        for a, (u_bottom, u_top) in enumerate(columns, start=1):
            meetings.append(((a, 0), bottom, u_bottom, short_columns.get(a) != 0, bottom_f))
            meetings.append(((a, ky + 1), top, u_top, short_columns.get(a) != ky, top_f))
        for b, (v_left, v_right) in enumerate(rows, start=1):
            meetings.append(((0, b), left, v_left, short_rows.get(b) != 0, left_f))
            meetings.append(((kx + 1, b), right, v_right, short_rows.get(b) != kx, right_f))
        for key, run, fraction, joined, fractions in meetings:
            if joined:
                node[key], fraction = self.attach(run, fraction, merge_m=JUNCTION_MERGE_M)
                self.arterial_stops[node[key]] = run
            point[key] = self.point_on(run, fraction)
            fractions.append(fraction)
        for fractions in (bottom_f, top_f, left_f, right_f):
            fractions.append(1.0)
        for a, (u0, u1) in enumerate(columns, start=1):
            for b, (v0, v1) in enumerate(rows, start=1):
                du, dv = u1 - u0, v1 - v0
                u = (u0 + du * v0) / (1 - du * dv)  # where column a's and row b's lines cross
                x, y = bilinear(u, v0 + dv * u)
                jitter_m = NODE_JITTER_M
                point[a, b] = (
                    x + rng.uniform(-jitter_m, jitter_m),
                    y + rng.uniform(-jitter_m, jitter_m),
                )
                node[a, b] = self.add_node(*point[a, b])

        column_runs: dict[tuple[int, int], int] = {}  # (a, b): from (a, b) north to (a, b + 1)
        for a in range(1, kx + 1):
            line = self._street_line(1 if (a + i) % 2 else -1)
            for b in range(ky + 1):
                if short_columns.get(a) != b:
                    column_runs[a, b] = self.add_run(line, node[a, b], node[a, b + 1])
        row_runs: dict[tuple[int, int], int] = {}  # (a, b): from (a, b) east to (a + 1, b)
        for b in range(1, ky + 1):
            line = self._street_line(1 if (b + j) % 2 else -1)
            for a in range(kx + 1):
                if short_rows.get(b) != a:
                    row_runs[a, b] = self.add_run(line, node[a, b], node[a + 1, b])

        def street_side(runs: dict[tuple[int, int], int], key: tuple[int, int]) -> Side | None:
            return Side(runs[key], 0.0, 1.0) if key in runs else None

        for b in range(ky + 1):
            for a in range(kx + 1):
                # A block side is a street run (None where a short street left a gap),
                # or the stretch of an arterial run between two columns or rows.
                sides = (
                    street_side(row_runs, (a, b))
                    if b > 0
                    else Side(bottom, bottom_f[a], bottom_f[a + 1]),
                    street_side(row_runs, (a, b + 1))
                    if b < ky
                    else Side(top, top_f[a], top_f[a + 1]),
                    street_side(column_runs, (a, b))
                    if a > 0
                    else Side(left, left_f[b], left_f[b + 1]),
                    street_side(column_runs, (a + 1, b))
                    if a < kx
                    else Side(right, right_f[b], right_f[b + 1]),
                )
                corners = (point[a, b], point[a + 1, b], point[a + 1, b + 1], point[a, b + 1])
                self.blocks.append(Block(corners, sides))

    # ---------------------------------------------------------------- alleys

    def alley_line(self, entrance: AlleyEntrance) -> int:
        rng = self.rng
        speed = round(rng.uniform(8.0, 12.0), 1)
        line = self.add_line("", "", StreetClass.ALLEY, speed, round(rng.uniform(15.0, 30.0), 1))
        self.lines[line].entrance = entrance
        return line

    def in_keep_out(self, point: Point) -> bool:
        return any(math.dist(point, centre) < radius for centre, radius in self.keep_out)

    # ---------------------------------------------------------------- the result

    def streets(self) -> list[Street]:
        """Every segment as a `Street`, one-way ones pointing their way, alleys numbered."""
        self._number_alleys()
        streets = []
        for street_id, (line_id, a, b) in enumerate(self.segments()):
            line = self.lines[line_id]
            start, end = (b, a) if line.direction < 0 else (a, b)
            streets.append(
                Street(
                    id=street_id,
                    start=start,
                    end=end,
                    street_class=line.street_class,
                    name=line.name,
                    one_way=line.direction != 0,
                    length_m=math.dist(self.xy[a], self.xy[b]),
                    speed_kmh=line.speed_kmh,
                    gps_noise_m=line.gps_noise_m,
                )
            )
        return streets

    def _number_alleys(self) -> None:
        """Name alleys like "Ngõ 12 Tô Hiệu": the house number their entrance would have,
        odd on the left, even on the right, counted the way the parent street runs."""
        for line in self.lines:
            entrance = line.entrance
            if entrance is None or line.name:
                continue
            parent = self.lines[entrance.parent_line]
            lengths = [self.run_length(r) for r in parent.runs]
            index = parent.runs.index(entrance.run)
            along_m = sum(lengths[:index]) + entrance.fraction * lengths[index]
            left = entrance.left
            if parent.direction < 0:  # house numbers follow the traffic
                along_m, left = sum(lengths) - along_m, not left
            number = house_number(along_m, left)
            while number in parent.alley_numbers:
                number += 2
            parent.alley_numbers.add(number)
            line.name = f"Ngõ {number} {parent.base_name}"
            line.base_name = f"{number} {parent.base_name}"


# -------------------------------------------------------------------- helpers


def house_number(along_m: float, left: bool) -> int:
    """The house number `along_m` metres from the start of a street, on its left or right."""
    return 2 * int(along_m / HOUSE_FRONTAGE_M) + (1 if left else 2)


def _name_supply(pool: tuple[str, ...], rng: random.Random) -> Iterator[str]:
    """The names of `pool` in a seeded order, then again numbered if a big city runs out."""
    shuffled = list(pool)
    rng.shuffle(shuffled)

    def supply() -> Iterator[str]:
        yield from shuffled
        for repeat in itertools.count(2):
            for name in shuffled:
                yield f"{name} {repeat}"

    return supply()


def _spread(low: float, high: float, intervals: int, rng: random.Random) -> list[float]:
    """`intervals + 1` positions from low to high, the inner ones jittered by up to 6 %."""
    step = (high - low) / intervals
    return [
        low + k * step + (rng.uniform(-0.06, 0.06) * step if 0 < k < intervals else 0.0)
        for k in range(intervals + 1)
    ]


def _street_fractions(extent_m: float, rng: random.Random) -> list[tuple[float, float]]:
    """Where streets cross a superblock `extent_m` wide: (fraction at one end, at the other)."""
    intervals = max(1, round(extent_m / rng.uniform(*STREET_SPACING_M)))
    out = []
    for k in range(1, intervals):
        centre = (k + rng.uniform(-0.1, 0.1)) / intervals
        slant = rng.uniform(-0.15, 0.15) / intervals  # streets are not quite parallel
        out.append((centre - slant, centre + slant))
    return out
