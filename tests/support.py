"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from psycopg import AsyncConnection

import fleet
from broker import ServiceAccount
from ingest import IngestService, MqttEndpoint
from sanitrack.settings import Settings, load_settings
from storage import Pool

SERVICE = ServiceAccount("sanitrack-service", "test-service-secret")


async def truncate(conn: AsyncConnection[Any], *tables: str) -> None:
    """Empty ``tables`` and everything referencing them, the append-only audit log too.

    The audit log refuses TRUNCATE through a trigger; a replica session fires no triggers
    (a superuser's privilege, which the tests' PostgreSQL gives).
    """
    await conn.execute("SET session_replication_role = replica")
    try:
        await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    finally:
        await conn.execute("SET session_replication_role = DEFAULT")


@dataclass(frozen=True)
class BrokerUnderTest:
    name: str
    host: str
    port: int
    service: ServiceAccount
    protocol: int
    checks_credentials: bool  # the shared CI Mosquitto allows anonymous logins

    def service_endpoint(self) -> MqttEndpoint:
        return MqttEndpoint(
            self.host,
            self.port,
            self.service.username,
            self.service.password,
            protocol=self.protocol,
        )


# ---------------------------------------------------------------- devices and ingest


@dataclass(frozen=True)
class DeviceUnderTest:
    tenant: str
    slug: str
    username: str
    secret: str
    device_id: int

    @property
    def topic(self) -> str:
        return f"sanitrack/{self.tenant}/dev/{self.slug}/pos"


async def make_devices(
    pool: Pool,
    count: int,
    tenant: str | None = None,
    kind: fleet.DeviceKind = fleet.DeviceKind.TRUCK,
) -> list[DeviceUnderTest]:
    tenant = tenant or f"t-{uuid.uuid4().hex[:8]}"
    devices = []
    async with pool.connection() as conn:
        owner = await fleet.ensure_tenant(conn, tenant, tenant)
        for n in range(count):
            created = await fleet.create_device(conn, owner, f"dev-{n}", kind)
            devices.append(
                DeviceUnderTest(
                    tenant, created.device.slug, created.username, created.secret, created.device.id
                )
            )
    return devices


def ingest_settings(**ingest: object) -> Settings:
    """Settings for an ingest under test: a unique client id and a short session."""
    values: dict[str, object] = {
        "client_id": f"ingest-test-{secrets.token_hex(4)}",
        "session_expiry_s": 120,
        "batch_max_delay_ms": 50,
        "reorder_window_ms": 100,
    }
    values.update(ingest)
    return load_settings(ingest=values)


@contextlib.asynccontextmanager
async def running_ingest(
    pool: Pool, broker: BrokerUnderTest, settings: Settings | None = None
) -> AsyncIterator[IngestService]:
    service = IngestService(settings or ingest_settings(), pool, broker.service_endpoint())
    task = asyncio.create_task(service.run(), name="ingest under test")
    try:
        await asyncio.wait_for(service.subscribed.wait(), timeout=15)
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


T = TypeVar("T")


async def wait_for(probe: Callable[[], Awaitable[T]], expected: T, timeout_s: float = 30.0) -> T:
    """Poll ``probe`` until it returns ``expected`` or time runs out; return the last value."""
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while value != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        value = await probe()
    return value
