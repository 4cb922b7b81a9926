"""Route planning and the route runs it writes.

For now the route-run store (ARCHITECTURE §8) that the simulator, the rules engine and the
live map share; the planning issue adds the OR-Tools solver on top.
"""

from planning.errors import Conflict, NotFound, PlanningError
from planning.models import (
    CrewMember,
    CrewRole,
    NewRouteRun,
    RouteRun,
    RouteStop,
    RunSource,
    RunStatus,
    StopKind,
)
from planning.service import (
    cancel_planned_runs,
    create_route_run,
    get_route_run,
    list_route_runs,
    runs_fingerprint,
    set_run_status,
)

__all__ = [
    "Conflict",
    "CrewMember",
    "CrewRole",
    "NewRouteRun",
    "NotFound",
    "PlanningError",
    "RouteRun",
    "RouteStop",
    "RunSource",
    "RunStatus",
    "StopKind",
    "cancel_planned_runs",
    "create_route_run",
    "get_route_run",
    "list_route_runs",
    "runs_fingerprint",
    "set_run_status",
]
