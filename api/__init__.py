"""HTTP API, WebSocket live feed and dispatcher pages; for now the operations endpoints."""

from api.auth import Authenticator, Principal, StaticTokens, bearer_token
from api.live import (
    AlertBus,
    BusSubscription,
    LiveFeed,
    LiveFilter,
    Snapshot,
    SnapshotQuery,
    alert_json,
    live_router,
    visit_json,
)
from api.ops import HealthCheck, ops_app

__all__ = [
    "AlertBus",
    "Authenticator",
    "BusSubscription",
    "HealthCheck",
    "LiveFeed",
    "LiveFilter",
    "Principal",
    "Snapshot",
    "SnapshotQuery",
    "StaticTokens",
    "alert_json",
    "bearer_token",
    "live_router",
    "ops_app",
    "visit_json",
]
