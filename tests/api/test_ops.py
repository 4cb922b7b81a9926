"""/health and /metrics of a real ingest service."""

from __future__ import annotations

import datetime as dt

import aiomqtt
import httpx
import orjson

from api import ops_app
from ingest import IngestService
from rules.service import RulesService
from sanitrack.app import ingest_health
from sanitrack.settings import RulesSettings
from storage import Pool
from tests.support import BrokerUnderTest, ingest_settings, make_devices, running_ingest, wait_for


async def get(app: object, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as client:
        return await client.get(path)


async def test_health_is_503_until_the_broker_is_connected(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    idle = IngestService(ingest_settings(), pool, broker.service_endpoint())
    response = await get(ops_app(ingest_health(idle, pool), [idle.metrics.registry]), "/health")
    assert response.status_code == 503
    assert response.json()["database"] is True
    assert response.json()["broker_connected"] is False
    async with running_ingest(pool, broker) as service:
        app = ops_app(ingest_health(service, pool), [service.metrics.registry])
        response = await get(app, "/health")
        assert response.status_code == 200
        assert response.json()["ok"] is True
        assert response.json()["rules"] == "off"


async def test_health_says_while_the_rules_engine_recovers(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    """Ingest does not wait for the engine's replay of the stored day: healthy meanwhile,
    and /health says the engine is recovering, then ready."""
    rules = RulesService(RulesSettings(), pool)
    async with running_ingest(pool, broker) as service:
        app = ops_app(ingest_health(service, pool, rules), [service.metrics.registry])
        recovering = (await get(app, "/health")).json()
        assert (recovering["ok"], recovering["rules"]) == (True, "recovering")
        await rules.start()
        assert (await get(app, "/health")).json()["rules"] == "ready"


async def test_metrics_count_what_happened(pool: Pool, broker: BrokerUnderTest) -> None:
    [device] = await make_devices(pool, 1)
    fix = {
        "ts": (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).isoformat(),
        "lat": 20.97,
        "lon": 105.77,
    }
    async with running_ingest(pool, broker) as service:
        async with aiomqtt.Client(
            broker.host, broker.port, username=device.username, password=device.secret
        ) as client:
            await client.publish(device.topic, orjson.dumps(fix), qos=1)
            await client.publish(device.topic, b"not json", qos=1)
        app = ops_app(ingest_health(service, pool), [service.metrics.registry])

        async def acked() -> int:
            return int(service.metrics.messages_acked._value.get())

        assert await wait_for(acked, 2, 15) == 2
        text = (await get(app, "/metrics")).text
    assert "sanitrack_ingest_messages_received_total 2.0" in text
    assert "sanitrack_ingest_rows_written_total 1.0" in text
    assert 'sanitrack_ingest_rejected_total{reason="not_json"} 1.0' in text
    assert "sanitrack_ingest_flush_seconds_bucket" in text
