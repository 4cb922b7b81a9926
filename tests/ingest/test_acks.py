from __future__ import annotations

from ingest.acks import AckTracker


def test_acks_go_out_in_arrival_order_once_everything_is_stored() -> None:
    sent: list[int] = []
    acks = AckTracker(lambda mid, qos: sent.append(mid))
    first, second = acks.begin(1, 1), acks.begin(2, 1)
    first.remaining, second.remaining = 2, 1
    acks.seal(first)
    acks.seal(second)
    acks.stored([second])
    assert sent == []  # message 2 is stored but 1 is not: order is kept
    acks.stored([first])
    assert sent == []
    acks.stored([first])
    assert sent == [1, 2]
    assert len(acks) == 0


def test_unsealed_messages_are_not_acked_and_qos0_is_never_acked() -> None:
    sent: list[int] = []
    acks = AckTracker(lambda mid, qos: sent.append(mid))
    open_one = acks.begin(5, 1)
    assert sent == []
    acks.seal(open_one)
    zero = acks.begin(0, 0)
    acks.seal(zero)
    assert sent == [5]
    assert acks.acked == 2


def test_deliveries_of_a_lost_connection_are_forgotten() -> None:
    old: list[int] = []
    new: list[int] = []
    acks = AckTracker(lambda mid, qos: old.append(mid))
    stale = acks.begin(9, 1)
    stale.remaining = 1
    acks.seal(stale)
    acks.new_connection(lambda mid, qos: new.append(mid))
    acks.stored([stale])  # the write finished after reconnecting
    fresh = acks.begin(9, 1)
    acks.seal(fresh)
    assert old == []
    assert new == [9]
