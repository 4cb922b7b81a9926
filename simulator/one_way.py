"""One-way streets: whole street lines, never cutting any place off.

About 10-15 % of STREET-class segments become one-way, a line at a time,
each in its line's preferred sense (neighbouring parallel streets alternate).
A line whose choice would leave some node unreachable, or unable to get out,
stays two-way: the directed graph is strongly connected afterwards.
"""

from __future__ import annotations

from collections import Counter

from simulator.network import StreetClass
from simulator.streets import Layout

ONE_WAY_SHARE = (0.10, 0.15)  # of STREET-class segments


def choose_one_way(layout: Layout) -> None:
    """Make whole street lines one-way until 10-15 % of STREET segments are, never
    letting a choice cut any node off (the directed graph stays strongly connected)."""
    rng = layout.rng
    segments = layout.segments()
    per_line = Counter(line for line, _, _ in segments)
    candidates = [
        n for n, line in enumerate(layout.lines) if line.street_class is StreetClass.STREET
    ]
    target = round(sum(per_line[n] for n in candidates) * rng.uniform(*ONE_WAY_SHARE))
    rng.shuffle(candidates)
    chosen = 0
    for line_id in candidates:
        if chosen >= target:
            break
        line = layout.lines[line_id]
        line.direction = line.one_way_sense
        if strongly_connected(layout, segments):
            chosen += per_line[line_id]
        else:
            line.direction = 0


def strongly_connected(layout: Layout, segments: list[tuple[int, int, int]]) -> bool:
    forward: list[list[int]] = [[] for _ in layout.xy]
    backward: list[list[int]] = [[] for _ in layout.xy]
    for line_id, a, b in segments:
        direction = layout.lines[line_id].direction
        if direction >= 0:
            forward[a].append(b)
            backward[b].append(a)
        if direction <= 0:
            forward[b].append(a)
            backward[a].append(b)
    return _reaches_all(forward) and _reaches_all(backward)


def _reaches_all(adjacency: list[list[int]]) -> bool:
    seen = [False] * len(adjacency)
    seen[0] = True
    stack = [0]
    while stack:
        for nxt in adjacency[stack.pop()]:
            if not seen[nxt]:
                seen[nxt] = True
                stack.append(nxt)
    return all(seen)
