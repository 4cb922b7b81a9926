"""simulator.mqtt_codec on its own: remaining lengths, the packet reader on streams
split anywhere, and topic filter matching."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.mqtt_codec import (
    MAX_REMAINING_LENGTH,
    PacketReader,
    decode_remaining_length,
    encode_packet,
    encode_remaining_length,
    topic_matches,
)
from simulator.wire_errors import ProtocolError


@given(st.integers(0, MAX_REMAINING_LENGTH), st.binary(max_size=3))
def test_remaining_length_round_trips(length: int, before: bytes) -> None:
    encoded = encode_remaining_length(length)
    assert len(encoded) == 1 + (length >= 128) + (length >= 16_384) + (length >= 2_097_152)
    assert decode_remaining_length(before + encoded + b"\x07", len(before)) == (
        length,
        len(before) + len(encoded),
    )
    for cut in range(len(encoded)):  # a length still arriving
        assert decode_remaining_length(before + encoded[:cut], len(before)) is None


def test_remaining_length_limits() -> None:
    assert encode_remaining_length(MAX_REMAINING_LENGTH) == b"\xff\xff\xff\x7f"
    with pytest.raises(ValueError, match="268435455"):
        encode_remaining_length(MAX_REMAINING_LENGTH + 1)
    with pytest.raises(ValueError, match="remaining length -1"):
        encode_remaining_length(-1)
    with pytest.raises(ProtocolError, match="longer than 4 bytes"):
        decode_remaining_length(b"\xff\xff\xff\xff\x01", 0)


packet_bodies = st.one_of(
    st.binary(max_size=200),
    # long enough for 2- and 3-byte remaining lengths, cheap to generate
    st.builds(
        lambda size, byte: bytes((byte,)) * size, st.integers(100, 20_000), st.integers(0, 255)
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 255), packet_bodies), max_size=12),
    st.data(),
)
def test_reader_reassembles_packets_split_anywhere(
    packets: list[tuple[int, bytes]], data: st.DataObject
) -> None:
    stream = b"".join(encode_packet(first, body) for first, body in packets)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=40)))
    reader = PacketReader()
    read: list[tuple[int, bytes]] = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        read += reader.feed(stream[start:stop])
    assert read == packets
    assert reader.pending_bytes == 0


def test_reader_takes_one_byte_at_a_time_and_many_packets_at_once() -> None:
    packets = [(0x40, b"\x00\x01"), (0x30, b"\x00\x01t" + b"p" * 300), (0xD0, b"")]
    stream = b"".join(encode_packet(first, body) for first, body in packets)
    reader = PacketReader()
    assert [p for byte in stream for p in reader.feed(bytes((byte,)))] == packets
    assert reader.feed(stream * 3) == packets * 3


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("sanitrack/t/dev/d/cmd", "sanitrack/t/dev/d/cmd", True),
        ("sanitrack/+/dev/+/cmd", "sanitrack/t/dev/d/cmd", True),
        ("sanitrack/#", "sanitrack/t/dev/d/cmd", True),
        ("sanitrack/+/dev/+/cmd", "sanitrack/t/dev/d/pos", False),
        ("sanitrack/+", "sanitrack/t/dev", False),
        ("#", "$SYS/broker/uptime", False),
    ],
)
def test_topic_matches(topic_filter: str, topic: str, matches: bool) -> None:
    assert topic_matches(topic_filter, topic) is matches
