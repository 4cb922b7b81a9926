"""Fastest paths over the open links of a `StreetGraph`: Dijkstra on junctions.

Dead ends stay out of the search. A junction with a single link (an alley's end) is only
ever reached, and left, through its one neighbour, so a place's move to a dead end is carried
on along that link to the neighbour instead (`SearchGraph.exits` / `entries`). In a city of
alleys that takes a third of the junctions out of every search, and out of the searches a
matrix needs.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from planning.street_graph import JUNCTION_BITS, BoolArray, Move, Place, StreetGraph

UNREACHED_MS = 1 << 60

# Per junction, its arcs: (next junction, milliseconds, metres, arc). The reverse graph
# lists each junction's in-coming arcs, from the junction they come from.
Adjacency = list[list[tuple[int, int, float, int]]]


@dataclass(frozen=True, slots=True)
class Spur:
    """A dead end: the junction its one link leads to, and the arc each way (-1 where a
    one-way link forbids it)."""

    neighbour: int
    arc_out: int  # dead end -> neighbour
    arc_in: int  # neighbour -> dead end


class SearchGraph:
    """The arcs of the open links, dead ends left out."""

    def __init__(self, graph: StreetGraph, open_links: BoolArray) -> None:
        self.graph = graph
        self.spurs = _spurs(graph, open_links)
        self.forward: Adjacency = [[] for _ in range(len(graph.junction_xy))]
        self.reverse: Adjacency = [[] for _ in range(len(graph.junction_xy))]
        rows = zip(
            graph.link_ends.tolist(),
            graph.link_duration_ms.tolist(),
            graph.link_length_m.tolist(),
            graph.link_one_way.tolist(),
            open_links.tolist(),
            strict=True,
        )
        for link, ((u, v), ms, metres, one_way, is_open) in enumerate(rows):
            if not is_open or u in self.spurs or v in self.spurs:
                continue
            self.forward[u].append((v, ms, metres, 2 * link))
            self.reverse[v].append((u, ms, metres, 2 * link))
            if not one_way:
                self.forward[v].append((u, ms, metres, 2 * link + 1))
                self.reverse[u].append((v, ms, metres, 2 * link + 1))

    def exits(self, place: Place) -> list[Move]:
        """The place's ways into the search, each ending at a junction that is searched."""
        return [lifted for move in self.graph.exits(place) if (lifted := self._lift(move, True))]

    def entries(self, place: Place) -> list[Move]:
        return [lifted for move in self.graph.entries(place) if (lifted := self._lift(move, False))]

    def _lift(self, move: Move, leaving: bool) -> Move | None:
        spur = self.spurs.get(move.junction)
        if spur is None:
            return move
        arc = spur.arc_out if leaving else spur.arc_in
        if arc < 0:
            return None
        link = arc >> 1
        return replace(
            move,
            junction=spur.neighbour,
            duration_ms=move.duration_ms + int(self.graph.link_duration_ms[link]),
            length_m=move.length_m + float(self.graph.link_length_m[link]),
            spur_arc=arc,
        )


def _spurs(graph: StreetGraph, open_links: BoolArray) -> dict[int, Spur]:
    """Junctions with one open link whose other end has more (so never a spur itself)."""
    degree = [0] * len(graph.junction_xy)
    only_link = [-1] * len(graph.junction_xy)
    for link, (u, v) in enumerate(graph.link_ends.tolist()):
        if open_links[link]:
            degree[u] += 1
            degree[v] += 1  # a loop counts twice: never a dead end
            only_link[u] = only_link[v] = link
    spurs = {}
    for junction, link in enumerate(only_link):
        if degree[junction] != 1:
            continue
        first, last = (int(j) for j in graph.link_ends[link])
        neighbour = last if junction == first else first
        if degree[neighbour] < 2:
            continue  # a lone link: keep both ends
        two_way = not graph.link_one_way[link]
        forward, backward = 2 * link, 2 * link + 1  # in line order, against it
        if junction == first:
            spurs[junction] = Spur(neighbour, forward, backward if two_way else -1)
        else:
            spurs[junction] = Spur(neighbour, backward if two_way else -1, forward)
    return spurs


@dataclass(frozen=True, slots=True)
class SearchTree:
    """Fastest times from the sources; on equal times the shorter way wins."""

    duration_ms: list[int]  # UNREACHED_MS where unreached
    length_m: list[float]
    arc_in: list[int]  # the arc that reached each junction; -1 at its source or unreached


def dijkstra(
    adjacency: Adjacency, sources: Iterable[Move], targets: Sequence[int] | None = None
) -> SearchTree:
    """Fastest paths from several sources, each with its own head start; stops once every
    target (all junctions when None) is settled."""
    n = len(adjacency)
    best_ms = [UNREACHED_MS] * n
    metres = [math.inf] * n
    arc_in = [-1] * n
    heap: list[int] = []
    for move in sources:
        j = move.junction
        if (move.duration_ms, move.length_m) < (best_ms[j], metres[j]):
            best_ms[j], metres[j] = move.duration_ms, move.length_m
            heap.append(move.duration_ms << JUNCTION_BITS | j)
    heapq.heapify(heap)
    wanted = bytearray(b"\x01" * n) if targets is None else bytearray(n)
    for junction in targets or ():
        wanted[junction] = 1
    left = sum(wanted)
    settled = bytearray(n)
    mask = (1 << JUNCTION_BITS) - 1
    pop, push = heapq.heappop, heapq.heappush
    while heap and left:
        key = pop(heap)
        node = key & mask
        if settled[node]:  # a stale key: the junction was reached faster since
            continue
        settled[node] = 1
        left -= wanted[node]
        here_ms, here_m = key >> JUNCTION_BITS, metres[node]
        # Every arc takes >= 1 ms, so a settled junction never passes the tests below.
        for nxt, step_ms, step_m, arc in adjacency[node]:
            there_ms = here_ms + step_ms
            if there_ms < best_ms[nxt]:
                best_ms[nxt], metres[nxt], arc_in[nxt] = there_ms, here_m + step_m, arc
                push(heap, there_ms << JUNCTION_BITS | nxt)
            elif there_ms == best_ms[nxt] and here_m + step_m < metres[nxt]:
                metres[nxt], arc_in[nxt] = here_m + step_m, arc  # already queued at this time
    return SearchTree(best_ms, metres, arc_in)
