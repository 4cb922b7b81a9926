"""Route planning and the route runs it writes.

For now the route-run store (ARCHITECTURE §8) that the simulator, the rules engine and the
live map share; the planning issue adds the OR-Tools solver on top.
"""

from planning.errors import Conflict, InvalidValue, NotFound, PlanningError
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
    run_vehicles,
    runs_fingerprint,
    set_run_status,
)
from planning.streets import (
    MapStreet,
    StreetKind,
    StreetSource,
    map_streets,
    save_street_map,
    street_map_bounds,
    street_map_geojson,
)

__all__ = [
    "Conflict",
    "CrewMember",
    "CrewRole",
    "InvalidValue",
    "MapStreet",
    "NewRouteRun",
    "NotFound",
    "PlanningError",
    "RouteRun",
    "RouteStop",
    "RunSource",
    "RunStatus",
    "StopKind",
    "StreetKind",
    "StreetSource",
    "cancel_planned_runs",
    "create_route_run",
    "get_route_run",
    "list_route_runs",
    "map_streets",
    "run_vehicles",
    "runs_fingerprint",
    "save_street_map",
    "set_run_status",
    "street_map_bounds",
    "street_map_geojson",
]
