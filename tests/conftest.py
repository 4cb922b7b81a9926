"""Real PostgreSQL and real MQTT brokers for the tests.

* PostgreSQL: ``SANITRACK_TEST_DATABASE_URL`` when set (CI: the machine's
  PostgreSQL 15), otherwise an embedded server under a temporary directory.
  Each test session works in its own fresh databases, dropped at the end.
* MQTT: the embedded amqtt broker always; Mosquitto too when
  ``SANITRACK_TEST_MQTT_URL`` is set. Broker-facing tests run once per broker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

import fleet
from broker import BrokerAccess, ServiceAccount, acl_file, embedded_broker, free_port, password_file
from ingest import MqttEndpoint
from sanitrack.clock import SystemClock
from sanitrack.settings import load_settings
from storage import Pool, apply_migrations, embedded_postgres, maintain, open_pool
from tests.support import SERVICE, BrokerUnderTest, truncate

TEST_DATABASE_URL = os.environ.get("SANITRACK_TEST_DATABASE_URL")
TEST_MQTT_URL = os.environ.get("SANITRACK_TEST_MQTT_URL")


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A maintenance connection URL of the PostgreSQL server under test."""
    if TEST_DATABASE_URL:
        yield TEST_DATABASE_URL
        return
    with embedded_postgres(tmp_path_factory.mktemp("embedded-pg"), database="test") as url:
        yield url


@dataclass
class DatabaseFactory:
    server_url: str
    created: list[str] = field(default_factory=list)

    def create(self) -> str:
        name = f"sanitrack_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return database_url_for(self.server_url, name)

    def drop_all(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url_for(server_url: str, name: str) -> str:
    """The server's URL with another database name (kept a URL: processes need one)."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def databases(server_url: str) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(server_url)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
async def database_url(databases: DatabaseFactory) -> str:
    """One migrated database shared by the session; tests start from empty tables."""
    url = databases.create()
    await apply_migrations(url)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await maintain(conn, load_settings().positions, SystemClock().now())
    return url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    async with open_pool(database_url, min_size=1, max_size=6) as pool:
        async with pool.connection() as conn:
            await truncate(
                conn, "positions", "dead_letters", "devices", "vehicles", "staff", "tenants"
            )
        yield pool


# ---------------------------------------------------------------- MQTT


def _broker_params() -> list[str]:
    return ["amqtt", "mosquitto"]


@pytest.fixture(params=_broker_params())
async def broker(request: pytest.FixtureRequest, pool: Pool) -> AsyncIterator[BrokerUnderTest]:
    if request.param == "amqtt":
        access = BrokerAccess(pool, SERVICE, SystemClock(), cache_s=0)
        async with embedded_broker(access, SERVICE, "127.0.0.1", free_port()) as running:
            yield BrokerUnderTest("amqtt", running.host, running.port, SERVICE, 4, True)
        return
    if not TEST_MQTT_URL:
        pytest.skip("SANITRACK_TEST_MQTT_URL is not set: no Mosquitto to test against")
    endpoint = MqttEndpoint.from_url(TEST_MQTT_URL)
    service = ServiceAccount(endpoint.username or "sanitrack-service", endpoint.password or "")
    yield BrokerUnderTest("mosquitto", endpoint.host, endpoint.port, service, 5, False)


@dataclass
class PrivateMosquitto:
    """A Mosquitto of our own, configured from broker-export files, to test logins and ACL."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def write_auth(self, logins: list[fleet.DeviceLogin]) -> None:
        (self.directory / "passwd").write_text(password_file(logins, SERVICE))
        (self.directory / "acl").write_text(acl_file(logins, SERVICE))
        if self.process is not None:
            self.process.send_signal(1)  # SIGHUP: reload the password file and ACL
            time.sleep(0.3)

    def start(self) -> None:
        conf = self.directory / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
            f"password_file {self.directory / 'passwd'}\nacl_file {self.directory / 'acl'}\n"
            "persistence false\nmax_queued_messages 100000\n"
            # As root, stay root to read the files in pytest's private tmp dir.
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.process = subprocess.Popen(
            [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            time.sleep(0.05)
        raise RuntimeError("private Mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(5)


@pytest.fixture
def private_mosquitto(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    if shutil.which("mosquitto") is None:
        pytest.skip("the mosquitto binary is not installed: cannot test Mosquitto's ACL here")
    broker = PrivateMosquitto(tmp_path, free_port())
    yield broker
    broker.stop()
