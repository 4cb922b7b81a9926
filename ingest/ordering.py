"""Per-device ordering: fixes and events are held for a short window and released in time order.

An item is released once it has waited ``window_s`` (by the clock passed in)
and no held item of its device is older. One that arrives after a newer item
of its device was released is still released, marked ``late``, so the rules
engine can evaluate it in event time (issue: rules engine). Fixes and events
of a device share one order: a bin lift at 08:00:05 comes after the fix of
08:00:00 and before the fix of 08:00:10, whichever arrived first.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Iterator

from ingest.fix import DeviceItem

# (item time, arrival counter, arrival seconds, item): plain tuples compare in C.
_Held = tuple[float, int, float, DeviceItem]


class ReorderBuffer:
    def __init__(self, window_s: float, max_held_per_device: int = 1000) -> None:
        self._window_s = window_s
        self._max_held = max_held_per_device
        self._held: dict[int, list[_Held]] = {}
        self._released_up_to: dict[int, float] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._held.values())

    def push(self, item: DeviceItem, now_s: float) -> None:
        heap = self._held.setdefault(item.device_id, [])
        heapq.heappush(heap, (item.time.timestamp(), next(self._counter), now_s, item))

    def release(self, now_s: float) -> Iterator[DeviceItem]:
        """Items whose window has passed, per device in time order."""
        for device_id in list(self._held):
            heap = self._held[device_id]
            while heap and (now_s - heap[0][2] >= self._window_s or len(heap) > self._max_held):
                time_key, _, _, item = heapq.heappop(heap)
                last = self._released_up_to.get(device_id)
                if last is not None and time_key < last:
                    item = dataclasses.replace(item, late=True)
                else:
                    self._released_up_to[device_id] = time_key
                yield item
            if not heap:
                del self._held[device_id]

    def drain(self) -> Iterator[DeviceItem]:
        """Everything still held (at shutdown)."""
        return self.release(float("inf"))
