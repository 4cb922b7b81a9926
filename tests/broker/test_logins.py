"""Device logins and the topic ACL against real brokers: embedded amqtt and a Mosquitto
configured from `broker-export` files."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator

import aiomqtt
import orjson
import pytest

import fleet
from broker import BrokerAccess, embedded_broker, free_port
from ingest import MqttEndpoint
from sanitrack.clock import SystemClock
from storage import Pool, count_dead_letters, count_positions
from tests.conftest import PrivateMosquitto
from tests.support import SERVICE, BrokerUnderTest, make_devices, running_ingest

FIX = orjson.dumps(
    {
        "ts": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat(),
        "lat": 20.97,
        "lon": 105.77,
    }
)


@contextlib.asynccontextmanager
async def brokers(
    pool: Pool, kind: str, mosquitto: PrivateMosquitto | None
) -> AsyncIterator[BrokerUnderTest]:
    """The embedded broker, or our own Mosquitto with exported password file and ACL."""
    if kind == "amqtt":
        access = BrokerAccess(pool, SERVICE, SystemClock(), cache_s=0)
        async with embedded_broker(access, SERVICE, "127.0.0.1", free_port()) as running:
            yield BrokerUnderTest("amqtt", running.host, running.port, SERVICE, 4, True)
        return
    assert mosquitto is not None
    async with pool.connection() as conn:
        mosquitto.write_auth(await fleet.list_logins(conn))
    mosquitto.start()
    yield BrokerUnderTest("mosquitto", "127.0.0.1", mosquitto.port, SERVICE, 5, True)


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def mosquitto_if_needed(
    broker_kind: str, request: pytest.FixtureRequest
) -> PrivateMosquitto | None:
    if broker_kind == "amqtt":
        return None
    return request.getfixturevalue("private_mosquitto")  # type: ignore[no-any-return]


async def test_wrong_password_and_anonymous_logins_are_refused(
    pool: Pool, broker_kind: str, mosquitto_if_needed: PrivateMosquitto | None
) -> None:
    [device] = await make_devices(pool, 1)
    async with brokers(pool, broker_kind, mosquitto_if_needed) as broker:
        for username, password in (
            (device.username, "wrong"),
            (None, None),
            ("ghost@nowhere", device.secret),
        ):
            with pytest.raises(aiomqtt.MqttError):
                async with aiomqtt.Client(
                    broker.host, broker.port, username=username, password=password, timeout=5
                ):
                    pass
        async with aiomqtt.Client(
            broker.host, broker.port, username=device.username, password=device.secret, timeout=5
        ):
            pass  # the right secret gets in


async def test_a_device_cannot_publish_for_another_device(
    pool: Pool, broker_kind: str, mosquitto_if_needed: PrivateMosquitto | None
) -> None:
    intruder, victim = await make_devices(pool, 2)
    async with (
        brokers(pool, broker_kind, mosquitto_if_needed) as broker,
        running_ingest(pool, broker),
    ):
        async with aiomqtt.Client(
            broker.host, broker.port, username=intruder.username, password=intruder.secret
        ) as client:
            await client.publish(victim.topic, FIX, qos=1)
            await client.publish(intruder.topic, FIX, qos=1)  # its own, as a marker
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            async with pool.connection() as conn:
                stored = await count_positions(conn)
            if stored or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # time for the forged fix, were it to arrive
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT device_id FROM positions")
            assert [r[0] for r in await cursor.fetchall()] == [intruder.device_id]
            assert await count_dead_letters(conn) == 0


async def test_a_deactivated_device_is_refused_at_its_next_login(
    pool: Pool, broker_kind: str, mosquitto_if_needed: PrivateMosquitto | None
) -> None:
    [device] = await make_devices(pool, 1)
    async with brokers(pool, broker_kind, mosquitto_if_needed) as broker:
        async with pool.connection() as conn:
            await fleet.set_active(conn, device.device_id, False)
            if mosquitto_if_needed is not None:
                mosquitto_if_needed.write_auth(await fleet.list_logins(conn))
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                broker.host,
                broker.port,
                username=device.username,
                password=device.secret,
                timeout=5,
            ):
                pass


def test_service_endpoint_from_url() -> None:
    endpoint = MqttEndpoint.from_url("mqtts://svc:p%40ss@broker.example:8883")
    assert (endpoint.host, endpoint.port, endpoint.username, endpoint.password, endpoint.tls) == (
        "broker.example",
        8883,
        "svc",
        "p@ss",
        True,
    )
