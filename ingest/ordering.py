"""Per-device ordering: fixes are held for a short window and released in fix-time order.

A fix is released once it has waited ``window_s`` (by the clock passed in)
and no held fix of its device is older. One that arrives after a newer fix
of its device was released is still released, marked ``late``, so the
rules engine can evaluate it in event time (issue: rules engine).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator

from ingest.fix import DeviceFix

# (fix time, arrival counter, arrival seconds, item): plain tuples compare in C.
_Held = tuple[float, int, float, DeviceFix]


class ReorderBuffer:
    def __init__(self, window_s: float, max_held_per_device: int = 1000) -> None:
        self._window_s = window_s
        self._max_held = max_held_per_device
        self._held: dict[int, list[_Held]] = {}
        self._released_up_to: dict[int, float] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._held.values())

    def push(self, item: DeviceFix, now_s: float) -> None:
        heap = self._held.setdefault(item.device_id, [])
        heapq.heappush(heap, (item.fix.time.timestamp(), next(self._counter), now_s, item))

    def release(self, now_s: float) -> Iterator[DeviceFix]:
        """Fixes whose window has passed, per device in fix-time order."""
        for device_id in list(self._held):
            heap = self._held[device_id]
            while heap and (now_s - heap[0][2] >= self._window_s or len(heap) > self._max_held):
                time_key, _, _, item = heapq.heappop(heap)
                last = self._released_up_to.get(device_id)
                if last is not None and time_key < last:
                    item = DeviceFix(
                        item.device_id, item.tenant_id, item.fix, item.received_at, late=True
                    )
                else:
                    self._released_up_to[device_id] = time_key
                yield item
            if not heap:
                del self._held[device_id]

    def drain(self) -> Iterator[DeviceFix]:
        """Everything still held (at shutdown)."""
        return self.release(float("inf"))
