"""Assembling processes from settings: where the database and the broker come from.

Nothing in the code path differs between the embedded default and
production except where the settings point (ARCHITECTURE §2).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import secrets
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import uvicorn

import alerts
import fleet
import planning
from api import (
    HealthCheck,
    LiveFeed,
    LiveFilter,
    Principal,
    SessionTokens,
    Snapshot,
    SnapshotQuery,
    StaticTokens,
)
from api.context import ApiContext, CredentialsChanged
from api.live_positions import PositionSource
from api.positions_bus import PositionListener, PositionNotifier
from api.server import http_app
from broker import BrokerAccess, RunningBroker, ServiceAccount, embedded_broker
from ingest import IngestService, MqttEndpoint
from rules.service import VIETNAM, RulesService
from sanitrack.clock import SystemClock
from sanitrack.memory import return_large_buffers
from sanitrack.settings import Settings
from storage import Pool, apply_migrations, detect_backend, embedded_postgres, open_pool

log = logging.getLogger(__name__)

SERVICE_USERNAME = "sanitrack-service"


@dataclass(frozen=True, slots=True)
class Database:
    url: str
    pool: Pool
    embedded: bool


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Database]:
    """The configured PostgreSQL, or an embedded one; migrated, with a pool."""
    async with contextlib.AsyncExitStack() as stack:
        url = settings.database_url
        if url is None:
            url = stack.enter_context(embedded_postgres(settings.data_dir))
        applied = await apply_migrations(url)
        if applied:
            log.info("database migrated", extra={"applied": applied})
        pool = await stack.enter_async_context(
            open_pool(url, min_size=settings.db_pool_min_size, max_size=settings.db_pool_max_size)
        )
        yield Database(url, pool, settings.database_url is None)


@contextlib.asynccontextmanager
async def mqtt_endpoint(
    settings: Settings, pool: Pool
) -> AsyncIterator[tuple[MqttEndpoint, RunningBroker | None]]:
    """The configured broker, or an embedded amqtt broker with device logins."""
    if settings.mqtt_url is not None:
        protocol = 5 if settings.ingest.mqtt_protocol == "5" else 4
        yield MqttEndpoint.from_url(settings.mqtt_url, protocol=protocol), None
        return
    service = ServiceAccount(
        SERVICE_USERNAME, settings.service_mqtt_password or secrets.token_urlsafe(24)
    )
    access = BrokerAccess(pool, service, SystemClock(), settings.broker.credential_cache_s)
    async with embedded_broker(access, service, settings.broker.host, settings.broker.port) as b:
        yield MqttEndpoint(b.host, b.port, service.username, service.password, protocol=4), b


async def serve_http(app: Any, host: str, port: int) -> None:
    """Run an ASGI app until cancelled."""
    # The live feed's snapshots are megabytes each: freed, they go back to the system.
    return_large_buffers()
    # No per-message deflate: it would compress every live frame once per client; a
    # thousand vehicles are ~60 kB/s per map uncompressed, cheaper to send than to squeeze.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        # The sans-I/O protocol (uvicorn's default since 0.50), named: the live feed writes
        # its positions frames straight to its sockets (api/live_wire.py).
        ws="websockets-sansio",
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    # Signals belong to the process (sanitrack.cli cancels the main task), not to uvicorn.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    serving = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        # Shut down as uvicorn does on a signal: close the listening socket and the
        # connections (WebSocket clients get 1012), then finish being cancelled.
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 10)
        raise


async def database_reachable(pool: Pool) -> bool:
    try:
        async with pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
    except Exception:
        return False
    return True


def ingest_health(
    service: IngestService, pool: Pool, rules: RulesService | None = None
) -> HealthCheck:
    """Ingest is healthy with its database and broker; the rules engine says whether it is
    still replaying the stored day after a start (ingest does not wait for it)."""

    async def check() -> dict[str, Any]:
        database_ok = await database_reachable(pool)
        status = service.status()
        return {
            "ok": database_ok and status.broker_connected,
            "database": database_ok,
            "broker_connected": status.broker_connected,
            "last_write_ok": status.last_write_ok,
            "pending_messages": status.pending_messages,
            "buffered_rows": status.buffered_rows,
            "rules": "off" if rules is None else "ready" if rules.ready.is_set() else "recovering",
        }

    return check


def tune_gc_for_streaming() -> None:
    """Fewer, cheaper garbage collections for a process that streams small objects.

    Measured in bench/ingest.py: at 8,000 msg/s the default thresholds spent 12-13 %
    of ingest CPU in the collector (27 % once behind, with ~120 ms full collections);
    frozen start-up objects and a larger young generation bring it to 2-3 %.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def ingest_with_rules(
    settings: Settings,
    db: Database,
    endpoint: MqttEndpoint,
    runtime: AlertsRuntime,
    credentials_changed: CredentialsChanged | None = None,
) -> tuple[IngestService, Any]:
    """The ingest service feeding the rules engine and the live map's positions, and the
    HTTP app of its process: the API, the dispatcher page, /ws/live, /health and /metrics
    (ingest, rules, live feed)."""
    consumers = [runtime.positions.consume]
    if runtime.rules:
        consumers.insert(0, runtime.rules.consume)
    if settings.api.notify_positions:
        notifier = PositionNotifier(
            db.pool,
            runtime.positions.vehicle_of,
            settings.api.notify_positions_interval_ms / 1000,
        )
        consumers.append(notifier.consume)
        runtime.tasks.append(notifier.run())
    service = IngestService(settings, db.pool, endpoint, consumers=consumers)
    registries = [service.metrics.registry, runtime.feed.registry]
    if runtime.rules:
        registries.append(runtime.rules.metrics.registry)
    async with db.pool.connection() as conn:
        backend = await detect_backend(conn)
    ctx = ApiContext(
        db.pool,
        SystemClock(),
        settings.api,
        backend,
        feed=runtime.feed,
        credentials_changed=credentials_changed,
        customers=settings.customers,
        planning=settings.planning,
    )
    health = ingest_health(service, db.pool, runtime.rules)
    app = http_app(ctx, runtime.authenticator, health, registries)
    return service, app


async def run_ingest(settings: Settings) -> None:
    """`sanitrack ingest`: the ingest service and the rules engine, with /health, /metrics
    and the live feed /ws/live."""
    async with (
        database(settings) as db,
        mqtt_endpoint(settings, db.pool) as (endpoint, broker),
        alerts_runtime(settings, db, endpoint, {}) as runtime,
    ):
        service, app = await ingest_with_rules(
            settings, db, endpoint, runtime, broker.credentials_changed if broker else None
        )
        tune_gc_for_streaming()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(service.run(), name="ingest")
            tasks.create_task(serve_http(app, settings.http_host, settings.http_port), name="http")
            for n, task in enumerate(runtime.tasks):
                tasks.create_task(task, name=f"alerts-{n}")


async def run_api(settings: Settings) -> None:
    """`sanitrack api`: the API, the dispatcher page and the live feed in a process of their
    own; alerts and stop visits come over LISTEN/NOTIFY, positions too when the ingest
    announces them (SANITRACK_API__NOTIFY_POSITIONS=true)."""
    async with database(settings) as db, alerts_runtime(settings, db, None, {}) as runtime:
        listener = PositionListener(db.url, runtime.positions.publish_row)
        async with db.pool.connection() as conn:
            backend = await detect_backend(conn)
        ctx = ApiContext(
            db.pool,
            SystemClock(),
            settings.api,
            backend,
            feed=runtime.feed,
            customers=settings.customers,
            planning=settings.planning,
        )
        app = http_app(
            ctx, runtime.authenticator, api_health(db.pool, listener), [runtime.feed.registry]
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(listener.run(), name="positions-listener")
            tasks.create_task(serve_http(app, settings.http_host, settings.http_port), name="http")
            for n, task in enumerate(runtime.tasks):
                tasks.create_task(task, name=f"live-{n}")


def api_health(pool: Pool, listener: PositionListener) -> HealthCheck:
    async def check() -> dict[str, Any]:
        database_ok = await database_reachable(pool)
        listening = listener.listening.is_set()
        return {"ok": database_ok and listening, "database": database_ok, "positions": listening}

    return check


@dataclass(slots=True)
class AlertsRuntime:
    """The rules engine (fed by ingest), the live feed and what connects them."""

    rules: RulesService | None
    bus: alerts.LocalBus
    feed: LiveFeed
    positions: PositionSource
    authenticator: SessionTokens
    tasks: list[Coroutine[Any, Any, None]]


@contextlib.asynccontextmanager
async def alerts_runtime(
    settings: Settings,
    db: Database,
    endpoint: MqttEndpoint | None,
    extra_tokens: dict[str, str],
) -> AsyncIterator[AlertsRuntime]:
    """The rules engine (its task rebuilds its state from the database, holding what
    ingest hands it meanwhile), with its staff publisher; the alert bus fed by
    LISTEN/NOTIFY; the live feed on it, with the positions the ingest hands it. Logins'
    tokens open the feed and the API; ``extra_tokens`` adds fixed tokens ({token: tenant
    slug}) to the settings' ones.
    Without ``endpoint`` (the API process) there is no rules engine."""
    async with contextlib.AsyncExitStack() as stack:
        rules: RulesService | None = None
        staff: alerts.StaffAlertPublisher | None = None
        tasks: list[Coroutine[Any, Any, None]] = []
        if settings.rules.enabled and endpoint is not None:
            rules = RulesService(settings.rules, db.pool)
            staff = await stack.enter_async_context(
                alerts.StaffAlertPublisher(
                    endpoint, rules.recipients, client_id=f"{settings.ingest.client_id}-alerts"
                )
            )
            rules.send_to_staff(staff)
            tasks.append(rules.run())  # recovers first; holds what ingest hands it meanwhile
            # Route commands queued by plans and re-plans go out from here, where the
            # broker connection lives.
            tasks.append(
                planning.route_command_loop(
                    db.pool,
                    lambda: alerts.publisher_client(
                        endpoint, f"{settings.ingest.client_id}-routes"
                    ),
                    SystemClock(),
                )
            )
        bus = alerts.LocalBus()
        listener = await stack.enter_async_context(alerts.AlertListener(db.url, db.pool))
        tasks.append(alerts.pump(listener, bus))
        if staff is not None:  # ends made elsewhere (a dispatcher, a re-plan) to the crew
            tasks.append(alerts.relay_closures(bus, staff))
        principals = await _principals({**settings.live_tokens, **extra_tokens}, db.pool)
        authenticator = SessionTokens(db.pool, SystemClock(), fallback=StaticTokens(principals))
        feed = LiveFeed(
            authenticator,
            bus,
            _snapshot(db.pool),
            positions_interval_s=settings.api.live_positions_interval_ms / 1000,
            max_position_lag_s=settings.api.live_max_position_lag_s,
            max_queued_per_client=settings.api.live_max_queued,
        )
        tasks.append(feed.run())
        positions = PositionSource(feed, db.pool, SystemClock())
        await positions.start()
        tasks.append(positions.run())
        yield AlertsRuntime(rules, bus, feed, positions, authenticator, tasks)


async def _principals(tokens: dict[str, str], pool: Pool) -> dict[str, Principal]:
    async with pool.connection() as conn:
        tenants = {t.slug: t for t in await fleet.list_tenants(conn)}
    principals = {}
    for token, slug in tokens.items():
        tenant = tenants.get(slug)
        if tenant is None:
            log.warning("live token for unknown tenant %r ignored", slug)
            continue
        principals[token] = Principal(tenant.id, f"token for {slug}")
    return principals


def _snapshot(pool: Pool) -> SnapshotQuery:
    async def query(principal: Principal, wanted: LiveFilter) -> Snapshot:
        today = (
            dt.datetime.now(dt.UTC)
            .astimezone(VIETNAM)
            .replace(hour=0, minute=0, second=0, microsecond=0)
        )
        async with pool.connection() as conn:
            found = await alerts.open_alerts(conn, principal.tenant_id)
            visits = await alerts.visits_since(conn, today)
            route_vehicles = await planning.run_vehicles(
                conn, principal.tenant_id, sorted(wanted.routes)
            )
        return Snapshot(
            [a for a in found if wanted.matches(a.vehicle_id, a.route_run_id)],
            [
                v
                for v in visits
                if v.tenant_id == principal.tenant_id
                and wanted.matches(v.vehicle_id, v.route_run_id)
            ],
            route_vehicles=frozenset(route_vehicles),
        )

    return query
