"""Stop visits: recording a stay again only improves it; a visit is never downgraded."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

import alerts
from alerts import VisitEvidence, VisitStatus
from storage import Pool
from tests.alerts.world import T0, World, make_world

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
async def world(pool: Pool) -> World:
    return await make_world(pool)


async def test_a_probable_visit_becomes_visited_and_never_goes_back(
    pool: Pool, world: World
) -> None:
    arrival = T0 + 20 * MINUTE
    passing = world.visit(2, arrival)
    dwelt = world.visit(
        2,
        arrival,
        status=VisitStatus.VISITED,
        evidence=VisitEvidence.DWELL,
        departure_at=arrival + 2 * MINUTE,
        dwell_s=120.0,
        closest_m=6.5,
        lat=20.9705,
        lon=105.7705,
        late=True,
        details={"fix_count": 14},
    )
    replayed_pass = world.visit(2, arrival, dwell_s=2.0, closest_m=25.0, lat=20.99, lon=105.79)
    async with pool.connection() as conn:
        assert await alerts.record_visits(conn, [passing]) == 1
        assert await alerts.list_visits(conn, world.tenant_id, world.run_id) == [passing]
        assert await alerts.record_visits(conn, [dwelt]) == 1
        [upgraded] = await alerts.list_visits(conn, world.tenant_id, world.run_id)
        assert upgraded == world.visit(
            2,
            arrival,
            status=VisitStatus.VISITED,
            evidence=VisitEvidence.DWELL,
            departure_at=arrival + 2 * MINUTE,
            dwell_s=120.0,
            closest_m=6.5,
            lat=20.9705,
            lon=105.7705,
            late=True,
            details={"fixes": 3, "fix_count": 14},
        )
        assert await alerts.record_visits(conn, [replayed_pass, dwelt]) == 2
        assert await alerts.list_visits(conn, world.tenant_id, world.run_id) == [upgraded]


async def test_stronger_evidence_replaces_weaker_and_stays(pool: Pool, world: World) -> None:
    arrival = T0 + 20 * MINUTE
    dwell = world.visit(2, arrival, status=VisitStatus.VISITED, evidence=VisitEvidence.DWELL)
    lift = world.visit(2, arrival, status=VisitStatus.VISITED, evidence=VisitEvidence.BIN_LIFT)
    async with pool.connection() as conn:
        await alerts.record_visits(conn, [dwell, lift, world.visit(2, arrival)])
        [visit] = await alerts.list_visits(conn, world.tenant_id, world.run_id)
    assert (visit.status, visit.evidence) == (VisitStatus.VISITED, VisitEvidence.BIN_LIFT)


async def test_visits_are_listed_per_run_and_recovered_across_tenants(
    pool: Pool, world: World
) -> None:
    other = await make_world(pool)
    later = T0 + 30 * MINUTE
    async with pool.connection() as conn:
        written = await alerts.record_visits(
            conn,
            [
                world.visit(2, T0 + 20 * MINUTE),
                world.visit(1, T0 + 10 * MINUTE),
                world.visit(2, later),  # came back to stop 2: another stay
                other.visit(1, T0 + 40 * MINUTE),
            ],
        )
        assert written == 4
        listed = await alerts.list_visits(conn, world.tenant_id, world.run_id)
        assert [(v.stop_seq, v.arrival_at) for v in listed] == [
            (1, T0 + 10 * MINUTE),
            (2, T0 + 20 * MINUTE),
            (2, later),
        ]
        assert await alerts.list_visits(conn, other.tenant_id, world.run_id) == []
        recent = await alerts.visits_since(conn, later)
        assert [(v.tenant_id, v.arrival_at) for v in recent] == [
            (world.tenant_id, later),
            (other.tenant_id, T0 + 40 * MINUTE),
        ]
        found = await alerts.find_visits(
            conn,
            [
                (other.tenant_id, other.run_id, 1, T0 + 40 * MINUTE),
                (world.tenant_id, world.run_id, 1, T0 + 11 * MINUTE),  # no such stay
                (world.tenant_id, world.run_id, 2, later),
            ],
        )
        assert [(v.tenant_id, v.stop_seq) for v in found] == [
            (other.tenant_id, 1),
            (world.tenant_id, 2),
        ]


async def test_a_visit_is_written_only_into_its_runs_tenant(pool: Pool, world: World) -> None:
    other = await make_world(pool)
    stranger = other.visit(1, T0)
    intruder = dataclasses.replace(stranger, route_run_id=world.run_id)
    async with pool.connection() as conn:
        assert await alerts.record_visits(conn, [intruder]) == 0
        assert await alerts.list_visits(conn, world.tenant_id, world.run_id) == []
        assert await alerts.list_visits(conn, other.tenant_id, world.run_id) == []


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"status": VisitStatus.VISITED}, "does not fit evidence"),
        ({"evidence": VisitEvidence.DWELL}, "does not fit evidence"),
        ({"departure_at": T0 - MINUTE}, "before arrival_at"),
        ({"arrival_at": T0.replace(tzinfo=None)}, "time zone"),
        ({"dwell_s": -1.0}, "dwell_s"),
        ({"closest_m": float("nan")}, "closest_m"),
        ({"stop_seq": 0}, "stop_seq"),
    ],
)
async def test_malformed_visits_are_refused(
    pool: Pool, world: World, changes: dict[str, Any], words: str
) -> None:
    async with pool.connection() as conn:
        good = world.visit(1, T0)
        with pytest.raises(alerts.InvalidValue, match=words):
            await alerts.record_visits(conn, [good, dataclasses.replace(good, **changes)])
        assert await alerts.list_visits(conn, world.tenant_id, world.run_id) == []
