"""MQTT acknowledgements that wait for the database.

paho acknowledges a QoS 1 message as soon as it is read unless manual acks
are on; then nothing is acknowledged here until every fix and dead letter of
the message is committed. Acks go out in the order the messages came in
(MQTT 3.1.1 §4.6), so one slow message holds back the ones behind it, and
the number of unacknowledged messages is the back-pressure signal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class Delivery:
    """One received message: its packet id and how many of its items are not yet stored."""

    mid: int
    qos: int
    generation: int
    remaining: int = 0
    sealed: bool = False


class AckTracker:
    def __init__(self, send_ack: Callable[[int, int], None]) -> None:
        self._send_ack = send_ack
        self._pending: deque[Delivery] = deque()
        self._generation = 0
        self.acked = 0

    def __len__(self) -> int:
        return len(self._pending)

    def new_connection(self, send_ack: Callable[[int, int], None]) -> None:
        """Forget deliveries of a lost connection: the broker will send them again."""
        self._generation += 1
        self._pending.clear()
        self._send_ack = send_ack

    def begin(self, mid: int, qos: int) -> Delivery:
        delivery = Delivery(mid, qos, self._generation)
        self._pending.append(delivery)
        return delivery

    def seal(self, delivery: Delivery) -> None:
        """All items of the message are registered; it may be acked once they are stored."""
        delivery.sealed = True
        self._flush()

    def stored(self, deliveries: list[Delivery]) -> None:
        """One item of each delivery in the list has been committed."""
        for delivery in deliveries:
            delivery.remaining -= 1
        self._flush()

    def _flush(self) -> None:
        pending = self._pending
        while pending and pending[0].sealed and pending[0].remaining <= 0:
            delivery = pending.popleft()
            if delivery.generation == self._generation and delivery.qos > 0:
                self._send_ack(delivery.mid, delivery.qos)
            self.acked += 1
