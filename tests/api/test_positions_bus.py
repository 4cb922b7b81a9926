"""Positions between processes over LISTEN/NOTIFY, and `sanitrack api` as a process of its
own serving the live feed from what the ingest announces."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from api.positions_bus import MAX_PAYLOAD_BYTES, PositionListener, PositionNotifier, payloads
from broker import free_port
from ingest.fix import DeviceFix, Fix
from sanitrack import app as application
from sanitrack.settings import load_settings
from storage import Pool
from tests.api.conftest import fix, running_stack

T0 = dt.datetime(2026, 12, 4, 1, 0, tzinfo=dt.UTC)


ROW_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=300)


@given(st.lists(ROW_TEXT, max_size=200), st.integers(1, 10**12))
def test_payloads_keep_every_row_in_order_and_stay_under_the_limit(
    texts: list[str], tenant_id: int
) -> None:
    rows = [text.encode() for text in texts]  # rows are JSON: ASCII
    found = payloads(tenant_id, rows)
    assert all(len(text.encode()) <= MAX_PAYLOAD_BYTES for text in found)
    head = f'{{"t":{tenant_id},"r":['
    assert all(text.startswith(head) and text.endswith("]}") for text in found)
    joined = b",".join(text.encode()[len(head) : -2] for text in found)
    assert joined == b",".join(rows)


def device_fix(device_id: int, tenant_id: int, at_s: float, **kw: Any) -> DeviceFix:
    moment = T0 + dt.timedelta(seconds=at_s)
    return DeviceFix(
        device_id,
        tenant_id,
        Fix(moment, 20.97 + device_id * 1e-5, 105.77, 12.0, 90.0),
        moment,
        **kw,
    )


async def test_announced_positions_reach_a_listener_in_another_connection(
    pool: Pool, database_url: str
) -> None:
    heard: list[tuple[int, list[Any]]] = []
    all_heard = asyncio.Event()

    def deliver(tenant_id: int, row: list[Any]) -> None:
        heard.append((tenant_id, row))
        if len(heard) == 602:
            all_heard.set()

    listener = PositionListener(database_url, deliver)
    notifier = PositionNotifier(pool, lambda device: device * 10)
    listening = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        for device_id in range(600):
            notifier.consume(device_fix(device_id, 1 + device_id % 2, 1.0))
        notifier.consume(device_fix(5, 2, 0.5))  # older than what it has: ignored
        notifier.consume(device_fix(7, 2, 2.0, late=True))  # late: the map keeps the latest
        notifier.consume(device_fix(9, 2, 2.0, jump=True))  # a jump is not a position
        await notifier.flush()
        assert notifier.sent_payloads > 2  # 600 rows do not fit one payload
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_notify('sanitrack_positions', 'not json')")
            await conn.execute(
                "SELECT pg_notify('sanitrack_positions', '{\"t\": 1, \"r\": [[1, 2]]}')"
            )
        notifier.consume(device_fix(1000, 1, 3.0))
        await notifier.flush()
        await asyncio.wait_for(all_heard.wait(), 10)
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
    by_device = {row[0]: (tenant, row) for tenant, row in heard}
    assert len(heard) == 601 + 1  # the malformed row is delivered, and refused downstream
    assert by_device[5][1][2] == round((T0 + dt.timedelta(seconds=1)).timestamp() * 1000)
    assert by_device[7][1][2] == by_device[9][1][2] == by_device[5][1][2]
    assert by_device[42] == (1, [42, 420, by_device[5][1][2], 20.97 + 42e-5, 105.77, 12.0, 90.0])
    assert by_device[1000][0] == 1


async def test_a_separate_api_process_shows_what_the_ingest_announces(
    database_url: str, tmp_path: Path, pool: Pool
) -> None:
    async with running_stack(database_url, tmp_path, notify_positions=True) as stack:
        api_port = free_port()
        settings = load_settings(
            database_url=database_url,
            data_dir=tmp_path,
            http_port=api_port,
            api={"live_positions_interval_ms": 50},
        )
        serving = asyncio.create_task(application.run_api(settings))
        try:
            ws = None
            for _ in range(100):
                with contextlib.suppress(OSError):
                    ws = await connect(
                        f"ws://127.0.0.1:{api_port}/ws/live?token={stack.token}", proxy=None
                    )
                    break
                await asyncio.sleep(0.1)
            assert ws is not None, "sanitrack api did not start"
            await ws.send(orjson.dumps({"op": "subscribe", "channels": ["positions"]}).decode())
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "snapshot"
            at = dt.datetime.now(dt.UTC).replace(microsecond=0)
            await asyncio.sleep(0.5)  # the API's listener is LISTENing by now
            await stack.publish([fix(at, 20.97077, 105.7733)])
            while True:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["type"] == "positions":
                    break
            rows = [dict(zip(message["columns"], r, strict=True)) for r in message["rows"]]
            assert [(r["device_id"], r["lat"], r["lon"]) for r in rows] == [
                (stack.device_id, 20.97077, 105.7733)
            ]
            assert rows[0]["vehicle_id"] == stack.vehicle_id
            await ws.close()
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
