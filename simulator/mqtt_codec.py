"""MQTT 3.1.1 packet encoding and the incremental packet reader the device client uses.

The byte-level half of `simulator.wire`: remaining lengths, strings, CONNECT and
other packets, the length prefixes of PUBLISH, topic names and filter matching,
and `PacketReader`, which cuts the broker's byte stream into packets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from simulator.wire_errors import ProtocolError

MAX_REMAINING_LENGTH = 268_435_455  # 4 bytes of 7 bits
MAX_PACKET_ID = 65_535
# A 16-bit big-endian integer: packet ids, string lengths, the keepalive.
encode_uint16 = struct.Struct(">H").pack


@dataclass(frozen=True, slots=True)
class Will:
    """What the broker publishes for a device whose connection drops without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True

    def __post_init__(self) -> None:
        check_topic_name(self.topic, "Will.topic")
        if self.qos not in (0, 1, 2):
            raise ValueError(f"Will.qos={self.qos!r}: allowed 0, 1 or 2")
        if len(self.payload) > 65_535:
            raise ValueError(f"Will.payload: {len(self.payload)} bytes, allowed 0..65535")


def encode_remaining_length(length: int) -> bytes:
    """The fixed header's variable-length "remaining length": 1 to 4 bytes, 7 bits each."""
    if not 0 <= length <= MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length {length}: allowed 0..{MAX_REMAINING_LENGTH}")
    encoded = bytearray()
    while True:
        length, digit = divmod(length, 128)
        if not length:
            encoded.append(digit)
            return bytes(encoded)
        encoded.append(digit | 0x80)


def decode_remaining_length(data: bytes | bytearray, offset: int) -> tuple[int, int] | None:
    """``(length, offset after it)`` read at ``offset``, or None while bytes are missing."""
    length = 0
    for shift in (0, 7, 14, 21):
        if offset >= len(data):
            return None
        digit = data[offset]
        offset += 1
        length |= (digit & 0x7F) << shift
        if not digit & 0x80:
            return length, offset
    raise ProtocolError("remaining length longer than 4 bytes")


# Publishes of up to 16 KiB take their length prefix from here (measured: ~2x faster).
_SHORT_LENGTHS = tuple(encode_remaining_length(n) for n in range(16_384))


def length_prefix(length: int) -> bytes:
    """`encode_remaining_length`, from a table below 16 KiB: PUBLISH's hot path."""
    return _SHORT_LENGTHS[length] if length < 16_384 else encode_remaining_length(length)


def encode_string(text: str, field: str = "string") -> bytes:
    """A UTF-8 string with its 2-byte big-endian length."""
    return encode_binary(text.encode(), field)


def encode_binary(data: bytes, field: str = "binary") -> bytes:
    if len(data) > 65_535:
        raise ValueError(f"{field}: {len(data)} bytes, allowed 0..65535")
    return encode_uint16(len(data)) + data


def encode_packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_remaining_length(len(body)) + body


def encode_connect(
    client_id: str,
    username: str | None,
    password: str | None,
    keepalive_s: int,
    will: Will | None,
    clean_session: bool,
) -> bytes:
    flags = 0x02 if clean_session else 0
    fields = [encode_string(client_id, "client_id")]
    if will is not None:
        flags |= 0x04 | will.qos << 3 | (0x20 if will.retain else 0)
        fields += [encode_string(will.topic, "Will.topic"), encode_binary(will.payload)]
    if username is not None:
        flags |= 0x80
        fields.append(encode_string(username, "username"))
    if password is not None:
        flags |= 0x40
        fields.append(encode_string(password, "password"))
    header = b"\x00\x04MQTT\x04" + bytes((flags,)) + encode_uint16(keepalive_s)
    return encode_packet(0x10, header + b"".join(fields))


class PacketReader:
    """Cuts a byte stream into packets ``(first byte, body)``, wherever reads split it."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self._pending:
            data = self._pending + data
        packets = []
        position, end = 0, len(data)
        while end - position >= 2:
            length, start = data[position + 1], position + 2
            if length & 0x80:
                decoded = decode_remaining_length(data, position + 1)
                if decoded is None:
                    break
                length, start = decoded
            stop = start + length
            if stop > end:
                break
            packets.append((data[position], data[start:stop]))
            position = stop
        self._pending = data[position:] if position else data
        return packets


def check_topic_name(topic: str, field: str) -> None:
    """Raise ValueError naming ``field`` unless ``topic`` can be published to."""
    if not topic or "+" in topic or "#" in topic:
        raise ValueError(f"{field}={topic!r}: a topic name is non-empty, without + or #")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` (with + and # wildcards)."""
    if topic_filter == topic:
        return True
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    levels = topic.split("/")
    for index, wanted in enumerate(topic_filter.split("/")):
        if wanted == "#":
            return True
        if index >= len(levels) or (wanted != "+" and wanted != levels[index]):
            return False
    return len(levels) == len(topic_filter.split("/"))
