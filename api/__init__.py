"""HTTP API, WebSocket live feed and dispatcher pages; for now the operations endpoints."""

from api.ops import HealthCheck, ops_app

__all__ = ["HealthCheck", "ops_app"]
