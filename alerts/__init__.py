"""Alerts and their lifecycle (ARCHITECTURE §7), stop visits (proof of service), and the bus
that delivers alert changes to the live map and to field staff."""

from alerts.models import (
    Alert,
    AlertEvent,
    AlertKind,
    AlertSignal,
    AlertState,
    Change,
    Resolution,
    Severity,
    StopVisit,
    VisitEvidence,
    VisitStatus,
)

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertKind",
    "AlertSignal",
    "AlertState",
    "Change",
    "Resolution",
    "Severity",
    "StopVisit",
    "VisitEvidence",
    "VisitStatus",
]
