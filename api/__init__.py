"""HTTP API, WebSocket live feed, dispatcher pages and the operations endpoints."""

from api.auth import Authenticator, Principal, SessionTokens, StaticTokens, bearer_token
from api.live import AlertBus, BusSubscription, LiveFeed, install_live
from api.live_messages import (
    POSITION_COLUMNS,
    LiveFilter,
    LivePosition,
    Snapshot,
    SnapshotQuery,
    alert_json,
    position_json,
    position_row,
    visit_json,
)
from api.ops import HealthCheck, ops_app

__all__ = [
    "POSITION_COLUMNS",
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
    "install_live",
    "ops_app",
    "position_json",
    "position_row",
    "visit_json",
]
