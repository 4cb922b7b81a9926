"""The dead-letter table: every rejected message or fix, with why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

MAX_STORED_PAYLOAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: dt.datetime
    topic: str
    payload: bytes
    reason: str
    detail: str = ""
    tenant_id: int | None = None
    device_id: int | None = None


def _text(value: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogates (topics come from the wire)."""
    cleaned = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return cleaned.replace("\x00", "\\x00")


async def write_dead_letters(conn: AsyncConnection[Any], letters: Sequence[DeadLetter]) -> int:
    """Insert within the caller's transaction; payloads are cut at 64 KiB."""
    if not letters:
        return 0
    cursor = conn.cursor()
    async with cursor.copy(
        "COPY dead_letters (tenant_id, device_id, received_at, topic, payload,"
        " payload_size, reason, detail) FROM STDIN"
    ) as copy:
        for letter in letters:
            await copy.write_row(
                (
                    letter.tenant_id,
                    letter.device_id,
                    letter.received_at,
                    _text(letter.topic),
                    letter.payload[:MAX_STORED_PAYLOAD_BYTES],
                    len(letter.payload),
                    letter.reason,
                    _text(letter.detail)[:2000],
                )
            )
    return len(letters)


async def count_dead_letters(conn: AsyncConnection[Any], reason: str | None = None) -> int:
    if reason is None:
        cursor = await conn.execute("SELECT count(*) FROM dead_letters")
    else:
        cursor = await conn.execute(
            "SELECT count(*) FROM dead_letters WHERE reason = %s", (reason,)
        )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
