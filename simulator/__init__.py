"""Synthetic city, trucks and phones, fault injection and ground truth, load driver."""

from simulator.city import City, generate_city
from simulator.faults import PRESETS, FaultKind, FaultRates, TruthEntry, TruthLog, fault_rates
from simulator.register import Registered, register_scenario, route_run_of
from simulator.runner import RunStats, play
from simulator.scenario import (
    Scenario,
    ScenarioConfig,
    build_scenario,
    device_streams,
    merged_emissions,
)

__all__ = [
    "PRESETS",
    "City",
    "FaultKind",
    "FaultRates",
    "Registered",
    "RunStats",
    "Scenario",
    "ScenarioConfig",
    "TruthEntry",
    "TruthLog",
    "build_scenario",
    "device_streams",
    "fault_rates",
    "generate_city",
    "merged_emissions",
    "play",
    "register_scenario",
    "route_run_of",
]
