"""Route planning and the route runs it writes (ARCHITECTURE §8).

A depot's day becomes a ``planning.problem.Problem`` (``dataset``), stops nobody can serve
are reported (``diagnosis``), a solver engine orders the rest (``engine_pyvrp`` or
``engine_ortools`` behind ``engine.Engine``), every plan can be checked by an independent
oracle (``feasibility``), and the routes are stored as route runs with the path along the
streets (``run_builder``) and queued for the trucks (``commands``). ``replan`` re-plans the
rest of a day when a road is blocked, a truck breaks down or a customer calls.
"""

from planning.commands import route_command_loop, send_route_commands
from planning.dataset import LOCAL_ZONE
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
from planning.planner import PlanResult, plan_day
from planning.plans import PlanRecord, Task, UnservedStop, get_plan, list_plans, task_lists
from planning.replan import Replan, ReplanReason, RoadBlock, replan
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
    street_rows,
)
from planning.summary import PlanSummary

__all__ = [
    "LOCAL_ZONE",
    "Conflict",
    "CrewMember",
    "CrewRole",
    "InvalidValue",
    "MapStreet",
    "NewRouteRun",
    "NotFound",
    "PlanRecord",
    "PlanResult",
    "PlanSummary",
    "PlanningError",
    "Replan",
    "ReplanReason",
    "RoadBlock",
    "RouteRun",
    "RouteStop",
    "RunSource",
    "RunStatus",
    "StopKind",
    "StreetKind",
    "StreetSource",
    "Task",
    "UnservedStop",
    "cancel_planned_runs",
    "create_route_run",
    "get_plan",
    "get_route_run",
    "list_plans",
    "list_route_runs",
    "map_streets",
    "plan_day",
    "replan",
    "route_command_loop",
    "run_vehicles",
    "runs_fingerprint",
    "save_street_map",
    "send_route_commands",
    "set_run_status",
    "street_map_bounds",
    "street_map_geojson",
    "street_rows",
    "task_lists",
]
