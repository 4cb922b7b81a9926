"""A plan's routes reach the trucks: the commands queued with the runs are published on
each truck device's cmd topic (QoS 1) through a real broker, once, and a broker outage
keeps them queued for the next try."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from typing import Any

import aiomqtt
import orjson
import pytest

import alerts
import planning
from planning.commands import route_command_loop
from sanitrack.clock import ManualClock
from sanitrack.settings import PlanningSettings
from simulator import ScenarioConfig, build_scenario, register_scenario
from storage import Pool
from tests.support import BrokerUnderTest, wait_for

LOCAL = dt.timezone(dt.timedelta(hours=7))
DAY = dt.date(2026, 12, 7)
PLANNED_AT = dt.datetime(2026, 12, 7, 4, 0, tzinfo=LOCAL)  # the morning the routes are for


async def _planned_city(pool: Pool) -> tuple[str, list[int]]:
    slug = f"cmd-{uuid.uuid4().hex[:8]}"
    config = ScenarioConfig(seed=5, vehicles=2, phones=0, stops_per_run=5, tenant=slug)
    start = dt.datetime(2026, 12, 7, 5, 0, tzinfo=LOCAL)
    registered = await register_scenario(
        pool, build_scenario(config, start, 3600), route_runs=False
    )
    async with pool.connection() as conn:
        result = await planning.plan_day(
            conn, registered.tenant_id, DAY, PlanningSettings(time_limit_s=1.0),
            now=start - dt.timedelta(hours=1),
        )  # fmt: skip
    return slug, list(result.run_ids)


async def test_queued_route_commands_reach_the_trucks_cmd_topic(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    slug, run_ids = await _planned_city(pool)
    endpoint = broker.service_endpoint()
    received: list[tuple[str, dict[str, Any]]] = []

    def connect() -> contextlib.AbstractAsyncContextManager[aiomqtt.Client]:
        return alerts.publisher_client(endpoint, f"routes-{uuid.uuid4().hex[:6]}")

    async with alerts.publisher_client(endpoint, f"truck-{uuid.uuid4().hex[:6]}") as truck:
        await truck.subscribe(f"sanitrack/{slug}/dev/+/cmd", qos=1)
        sender = asyncio.create_task(
            route_command_loop(
                pool, connect, ManualClock(PLANNED_AT), interval_s=0.1, start_after_s=0
            )
        )
        try:
            async with asyncio.timeout(10):
                async for message in truck.messages:
                    received.append((str(message.topic), orjson.loads(bytes(message.payload))))
                    if len(received) == len(run_ids):
                        break
            # marked sent once the sender's transaction commits (a send cut short before
            # that is sent again: at least once, and the payload names its run)
            assert await wait_for(lambda: _unsent(pool, run_ids), 0, timeout_s=10) == 0
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    assert sorted(payload["route_run_id"] for _, payload in received) == sorted(run_ids)
    for topic, payload in received:
        assert topic.startswith(f"sanitrack/{slug}/dev/")
        assert payload["type"] == "route"
        assert payload["stops"]
        assert len(payload["path"]) >= 2


async def _unsent(pool: Pool, run_ids: list[int]) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM route_commands WHERE route_run_id = ANY(%s) AND sent_at IS NULL",
            (run_ids,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_failed_send_keeps_the_command_and_its_error(pool: Pool) -> None:
    _, run_ids = await _planned_city(pool)

    async def broken(topic: str, payload: bytes) -> None:
        raise aiomqtt.MqttError("broker gone")

    async with pool.connection() as conn:
        with pytest.raises(aiomqtt.MqttError):
            await planning.send_route_commands(conn, broken, PLANNED_AT)
        cursor = await conn.execute(
            "SELECT count(*) FILTER (WHERE sent_at IS NULL), max(error) FROM route_commands"
            " WHERE route_run_id = ANY(%s)",
            (run_ids,),
        )
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] == len(run_ids)
    assert row[1] == "broker gone"


async def test_yesterdays_and_cancelled_routes_are_not_sent(pool: Pool) -> None:
    _, run_ids = await _planned_city(pool)
    sent: list[str] = []

    async def publish(topic: str, payload: bytes) -> None:
        sent.append(topic)

    async with pool.connection() as conn:
        # two days later the routes are stale: nothing goes out
        later = PLANNED_AT + dt.timedelta(days=2)
        assert await planning.send_route_commands(conn, publish, later) == 0
        await conn.execute(
            "UPDATE route_runs SET status = 'cancelled' WHERE id = %s", (run_ids[0],)
        )
        await conn.commit()
        count = await planning.send_route_commands(conn, publish, PLANNED_AT)
    assert count == len(run_ids) - 1  # every run but the cancelled one
    assert len(sent) == count
