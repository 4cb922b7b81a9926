"""Rules: pure state machines over enriched fixes, and the engine that runs them per device
(wrong_route, missed_stop with stop visits, offline, speeding, idle, geofences, GPS jumps)."""

from rules.engine import (
    BinLift,
    DeviceContext,
    EngineStats,
    FixInput,
    RulesEngine,
    StopConfirmation,
)
from rules.signals import Subject, stored_keys
from rules.stops import Outcome

__all__ = [
    "BinLift",
    "DeviceContext",
    "EngineStats",
    "FixInput",
    "Outcome",
    "RulesEngine",
    "StopConfirmation",
    "Subject",
    "stored_keys",
]
