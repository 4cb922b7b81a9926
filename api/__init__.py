"""HTTP API, WebSocket live feed, dispatcher pages and the operations endpoints."""

from api.auth import Authenticator, Principal, SessionTokens, StaticTokens, bearer_token
from api.live import AlertBus, BusSubscription, LiveFeed, live_router
from api.live_messages import (
    LiveFilter,
    LivePosition,
    Snapshot,
    SnapshotQuery,
    alert_json,
    position_json,
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
    "LivePosition",
    "Principal",
    "SessionTokens",
    "Snapshot",
    "SnapshotQuery",
    "StaticTokens",
    "alert_json",
    "bearer_token",
    "live_router",
    "ops_app",
    "position_json",
    "visit_json",
]
