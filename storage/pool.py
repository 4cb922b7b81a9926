"""Connection pools: every connection lives inside an ``async with``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


@contextlib.asynccontextmanager
async def open_pool(url: str, *, min_size: int = 1, max_size: int = 8) -> AsyncIterator[Pool]:
    pool: Pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": False, "application_name": "sanitrack"},
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield pool
    finally:
        await pool.close()
