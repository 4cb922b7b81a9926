"""Alert storage: the only code that reads or writes ``alerts`` (alerts.visits: stop visits).

Every function takes an open connection; the caller owns the transaction. The rules apply
their signals here, people acknowledge, assign and resolve; both get back the alert as stored.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Sequence
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.types.json import Jsonb

from alerts.errors import Conflict, InvalidValue, NotFound
from alerts.models import (
    Alert,
    AlertEvent,
    AlertKind,
    AlertSignal,
    AlertState,
    Change,
    Resolution,
    Severity,
)

log = logging.getLogger(__name__)

KEY_MAX_CHARS = 500
NOTE_MAX_CHARS = 2000
LIST_MAX = 1000
RUN_CANCELLED_NOTE = "Tuyến đã bị huỷ"  # "the route run was cancelled"

# In the order of Alert's fields.
_COLUMNS = (
    "id, key, tenant_id, kind, severity, device_id, vehicle_id, route_run_id, stop_id, stop_seq,"
    " opened_at, last_evidence_at, state, message, evidence, resolved_at, resolution,"
    " resolved_by, acknowledged_at, acknowledged_by, acknowledge_note, assigned_to, assigned_at,"
    " assigned_by, resolve_note"
)
# A replayed opening finds its key taken and changes nothing. Nor does an opening on a run
# already cancelled: the engine learns of a cancellation only at its next reload, and what it
# says of the run meanwhile would stay open for ever (resolve_for_cancelled_runs has run).
_OPEN = (
    "INSERT INTO alerts (tenant_id, key, kind, severity, device_id, vehicle_id, route_run_id,"
    " stop_id, stop_seq, opened_at, last_evidence_at, message, evidence)"
    " SELECT %(tenant_id)s, %(key)s, %(kind)s, %(severity)s, %(device_id)s, %(vehicle_id)s,"
    " %(route_run_id)s, (SELECT id FROM route_stops WHERE tenant_id = %(tenant_id)s"
    " AND route_run_id = %(route_run_id)s AND seq = %(stop_seq)s), %(stop_seq)s, %(at)s, %(at)s,"
    " %(message)s, %(evidence)s"
    " WHERE NOT EXISTS (SELECT 1 FROM route_runs WHERE id = %(route_run_id)s"
    " AND status = 'cancelled')"
    f" ON CONFLICT (tenant_id, key) DO NOTHING RETURNING {_COLUMNS}"
)
# Evidence only moves forward: older evidence arriving late, or the same again, is no change.
_UPDATE = (
    "UPDATE alerts SET last_evidence_at = %(at)s, severity = %(severity)s,"
    " message = %(message)s, evidence = %(evidence)s"
    " WHERE tenant_id = %(tenant_id)s AND key = %(key)s AND state <> 'resolved'"
    " AND (last_evidence_at < %(at)s OR (last_evidence_at = %(at)s"
    " AND (severity, message, evidence) IS DISTINCT FROM"
    " (%(severity)s::text, %(message)s::text, %(evidence)s::jsonb)))"
    f" RETURNING {_COLUMNS}"
)
_RESOLVE = (
    "UPDATE alerts SET state = 'resolved', resolved_at = %(at)s, resolution = %(resolution)s,"
    " resolve_note = NULLIF(%(message)s, ''),"
    " last_evidence_at = GREATEST(last_evidence_at, %(at)s),"
    " evidence = CASE WHEN %(evidence)s::jsonb = '{}' THEN evidence ELSE %(evidence)s END"
    " WHERE tenant_id = %(tenant_id)s AND key = %(key)s AND state <> 'resolved'"
    f" RETURNING {_COLUMNS}"
)
_SIGNAL_SQL = {Change.OPENED: _OPEN, Change.UPDATED: _UPDATE, Change.RESOLVED: _RESOLVE}
# An opening that replaces a key (late data moved the alert's start): the alert stored under
# the old key takes the new key and start, keeping its id, acknowledgement and assignment. A
# resolved alert keeps what its end said; a one-shot event moves whole; a withdrawn one (it
# never held) is not taken back. When there is no such alert, or the new key is taken (a
# replay), _OPEN runs next and does what it does.
_RENAME = (
    "UPDATE alerts SET key = %(key)s, opened_at = %(at)s,"
    " last_evidence_at = CASE WHEN resolution = 'one_shot' THEN %(at)s"
    " ELSE GREATEST(last_evidence_at, %(at)s) END,"
    " resolved_at = CASE WHEN resolution = 'one_shot' THEN %(at)s ELSE resolved_at END,"
    " message = CASE WHEN state = 'resolved' AND resolution <> 'one_shot' THEN message"
    " ELSE %(message)s END,"
    " evidence = CASE WHEN state = 'resolved' AND resolution <> 'one_shot' THEN evidence"
    " ELSE %(evidence)s END"
    " WHERE tenant_id = %(tenant_id)s AND key = %(replaces)s AND kind = %(kind)s"
    " AND device_id IS NOT DISTINCT FROM %(device_id)s"
    " AND resolution IS DISTINCT FROM 'withdrawn'"
    " AND NOT EXISTS (SELECT 1 FROM alerts WHERE tenant_id = %(tenant_id)s AND key = %(key)s)"
    f" RETURNING {_COLUMNS}"
)
# One-shot events (opened and resolved at the same fix), as many as a batch has, in one
# statement: a depot's morning exodus is thousands of geofence crossings a minute.
_ONE_SHOTS = (
    "INSERT INTO alerts (tenant_id, key, kind, severity, device_id, vehicle_id, route_run_id,"
    " stop_id, stop_seq, opened_at, last_evidence_at, message, evidence, state, resolved_at,"
    " resolution, resolve_note)"
    " SELECT s.tenant_id, s.key, s.kind, s.severity, s.device_id, s.vehicle_id, s.route_run_id,"
    " (SELECT id FROM route_stops WHERE tenant_id = s.tenant_id"
    " AND route_run_id = s.route_run_id AND seq = s.stop_seq), s.stop_seq, s.at, s.at,"
    " s.message, s.evidence, 'resolved', s.at, 'one_shot', NULLIF(s.message, '')"
    " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[],"
    " %s::bigint[], %s::integer[], %s::timestamptz[], %s::text[], %s::jsonb[])"
    " AS s (tenant_id, key, kind, severity, device_id, vehicle_id, route_run_id, stop_seq, at,"
    " message, evidence)"
    " WHERE NOT EXISTS (SELECT 1 FROM route_runs WHERE id = s.route_run_id"
    " AND status = 'cancelled')"
    f" ON CONFLICT (tenant_id, key) DO NOTHING RETURNING {_COLUMNS}"
)


async def apply_signals(
    conn: AsyncConnection[Any], signals: Sequence[AlertSignal]
) -> list[AlertEvent]:
    """Apply the rules' signals in order; return one event per alert row actually changed.

    Idempotent: a signal applied again, an update or resolution of an unknown or resolved
    alert, or evidence older than what is stored, changes nothing and gives no event. A
    one-shot event (opened, then resolved as Resolution.ONE_SHOT at once) is stored resolved
    and gives one event, OPENED, with the alert as stored (resolved). An opening that
    ``replaces`` a stored alert's key renames that alert and gives an UPDATED event. The
    statements are pipelined: one round trip for the batch. A signal naming a missing
    device, vehicle or run raises NotFound and leaves the caller's transaction aborted.
    """
    for signal in signals:
        _check_signal(signal)
    if not signals:
        return []
    singles, one_shots = _one_shot_pairs(signals)
    try:
        async with conn.pipeline():
            cursors = []
            for _, signal in singles:
                params = _signal_params(signal)
                renamed = None
                if signal.replaces is not None:
                    renamed = await conn.execute(_RENAME, {**params, "replaces": signal.replaces})
                cursors.append((renamed, await conn.execute(_SIGNAL_SQL[signal.change], params)))
            one_shot_cursor = (
                await conn.execute(_ONE_SHOTS, _one_shot_params([s for _, s in one_shots]))
                if one_shots
                else None
            )
    except errors.ForeignKeyViolation as exc:
        raise NotFound(f"a device, vehicle or route run named by a signal: {exc}") from None
    except errors.CheckViolation as exc:
        raise InvalidValue(f"a signal breaks a rule of the alerts table: {exc}") from None
    changed: list[tuple[int, AlertEvent]] = []
    for (index, signal), (renamed, cursor) in zip(singles, cursors, strict=True):
        row = await renamed.fetchone() if renamed is not None else None
        if row is not None:
            await cursor.fetchone()  # the opening found its key taken: by the rename
            changed.append((index, AlertEvent(Change.UPDATED, _alert(row))))
            continue
        row = await cursor.fetchone()
        if row is not None:
            changed.append((index, AlertEvent(signal.change, _alert(row))))
        elif signal.change is not Change.OPENED:
            log.debug(
                "alert %r: %s changed nothing (unknown, resolved or not newer)",
                signal.key,
                signal.change,
            )
    if one_shot_cursor is not None:
        stored = {(a.tenant_id, a.key): a for a in map(_alert, await one_shot_cursor.fetchall())}
        for index, signal in one_shots:
            alert = stored.pop((signal.tenant_id, signal.key), None)
            if alert is not None:  # else a replay: stored before
                changed.append((index, AlertEvent(Change.OPENED, alert)))
    changed.sort(key=lambda indexed: indexed[0])
    return [event for _, event in changed]


def _one_shot_pairs(
    signals: Sequence[AlertSignal],
) -> tuple[list[tuple[int, AlertSignal]], list[tuple[int, AlertSignal]]]:
    """The signals to apply one by one, and the openings of one-shot events (an opening
    followed at once by its Resolution.ONE_SHOT end: a geofence crossing, a GPS jump), which
    are stored resolved, all in one statement. Each with its index, for the events' order."""
    singles: list[tuple[int, AlertSignal]] = []
    one_shots: list[tuple[int, AlertSignal]] = []
    index = 0
    while index < len(signals):
        signal = signals[index]
        end = signals[index + 1] if index + 1 < len(signals) else None
        if (
            end is not None
            and signal.change is Change.OPENED
            and signal.replaces is None
            and end.change is Change.RESOLVED
            and end.resolution is Resolution.ONE_SHOT
            and (end.tenant_id, end.key, end.at) == (signal.tenant_id, signal.key, signal.at)
        ):
            one_shots.append((index, signal))
            index += 2
        else:
            singles.append((index, signal))
            index += 1
    return singles, one_shots


def _one_shot_params(signals: Sequence[AlertSignal]) -> tuple[list[Any], ...]:
    return (
        [s.tenant_id for s in signals],
        [s.key for s in signals],
        [str(s.kind) for s in signals],
        [str(s.severity) for s in signals],
        [s.device_id for s in signals],
        [s.vehicle_id for s in signals],
        [s.route_run_id for s in signals],
        [s.stop_seq for s in signals],
        [s.at for s in signals],
        [s.message for s in signals],
        [Jsonb(s.evidence) for s in signals],
    )


def _check_signal(signal: AlertSignal) -> None:
    where = f"signal {signal.key!r}"
    if signal.change not in _SIGNAL_SQL:
        raise InvalidValue(f"{where}: change {signal.change!r} is for people, not the rules")
    if not 1 <= len(signal.key) <= KEY_MAX_CHARS:
        raise InvalidValue(f"{where}: key must be 1..{KEY_MAX_CHARS} characters")
    if signal.stop_seq is not None and signal.stop_seq < 1:
        raise InvalidValue(f"{where}: stop_seq {signal.stop_seq} is not >= 1")
    if signal.replaces is not None and (
        signal.change is not Change.OPENED or not 1 <= len(signal.replaces) <= KEY_MAX_CHARS
    ):
        raise InvalidValue(
            f"{where}: replaces must name a key of 1..{KEY_MAX_CHARS} characters, with OPENED"
        )
    if signal.at.utcoffset() is None:
        raise InvalidValue(f"{where}: at {signal.at!r} has no time zone")
    if signal.change is Change.RESOLVED and signal.resolution in (None, Resolution.BY_PERSON):
        raise InvalidValue(
            f"{where}: resolution {signal.resolution!r} must be one of cleared, visited_late,"
            " withdrawn or one_shot"
        )


def _signal_params(signal: AlertSignal) -> dict[str, Any]:
    return {
        "tenant_id": signal.tenant_id,
        "key": signal.key,
        "kind": str(signal.kind),
        "severity": str(signal.severity),
        "device_id": signal.device_id,
        "vehicle_id": signal.vehicle_id,
        "route_run_id": signal.route_run_id,
        "stop_seq": signal.stop_seq,
        "at": signal.at,
        "message": signal.message,
        "evidence": Jsonb(signal.evidence),
        "resolution": None if signal.resolution is None else str(signal.resolution),
    }


async def acknowledge(
    conn: AsyncConnection[Any], tenant_id: int, alert_id: int, staff_id: int, note: str | None
) -> AlertEvent:
    """A person has seen the alert; acknowledging again records the latest person and note."""
    _check_note(note)
    await _check_staff(conn, tenant_id, staff_id)
    return await _person_change(
        conn,
        Change.ACKNOWLEDGED,
        "state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %s,"
        " acknowledge_note = %s",
        (staff_id, note),
        tenant_id,
        alert_id,
    )


async def assign(
    conn: AsyncConnection[Any], tenant_id: int, alert_id: int, staff_id: int, assigned_by: int
) -> AlertEvent:
    """Make ``staff_id`` responsible for the alert; a resolved alert cannot be assigned."""
    await _check_staff(conn, tenant_id, staff_id, assigned_by)
    return await _person_change(
        conn,
        Change.ASSIGNED,
        "assigned_to = %s, assigned_at = now(), assigned_by = %s",
        (staff_id, assigned_by),
        tenant_id,
        alert_id,
    )


async def resolve(
    conn: AsyncConnection[Any], tenant_id: int, alert_id: int, staff_id: int, note: str | None
) -> AlertEvent:
    """A person closes the alert (Resolution.BY_PERSON)."""
    _check_note(note)
    await _check_staff(conn, tenant_id, staff_id)
    return await _person_change(
        conn,
        Change.RESOLVED,
        "state = 'resolved', resolved_at = now(), resolution = 'by_person', resolved_by = %s,"
        " resolve_note = %s",
        (staff_id, note),
        tenant_id,
        alert_id,
    )


async def resolve_for_cancelled_runs(
    conn: AsyncConnection[Any], tenant_id: int, run_ids: Collection[int]
) -> list[AlertEvent]:
    """Resolve the unresolved alerts of route runs just cancelled (Resolution.RUN_CANCELLED):
    the engine stops tracking a cancelled run, so nothing else would close them. Call in the
    transaction that cancels the runs, and announce the events in it."""
    if not run_ids:
        return []
    cursor = await conn.execute(
        "UPDATE alerts SET state = 'resolved', resolution = 'run_cancelled',"
        " resolved_at = GREATEST(now(), last_evidence_at), resolve_note = %s"
        " WHERE tenant_id = %s AND route_run_id = ANY(%s) AND state <> 'resolved'"
        f" RETURNING {_COLUMNS}",
        (RUN_CANCELLED_NOTE, tenant_id, list(run_ids)),
    )
    return [AlertEvent(Change.RESOLVED, _alert(row)) for row in await cursor.fetchall()]


async def _person_change(
    conn: AsyncConnection[Any],
    change: Change,
    assignments: str,
    values: tuple[Any, ...],
    tenant_id: int,
    alert_id: int,
) -> AlertEvent:
    cursor = await conn.execute(
        f"UPDATE alerts SET {assignments} WHERE tenant_id = %s AND id = %s"
        f" AND state <> 'resolved' RETURNING {_COLUMNS}",
        (*values, tenant_id, alert_id),
    )
    row = await cursor.fetchone()
    if row is not None:
        return AlertEvent(change, _alert(row))
    await get_alert(conn, tenant_id, alert_id)  # NotFound when it is missing or not theirs
    raise Conflict(f"alert {alert_id} is resolved: it cannot be {change}")


async def _check_staff(conn: AsyncConnection[Any], tenant_id: int, *staff_ids: int) -> None:
    cursor = await conn.execute(
        "SELECT id FROM staff WHERE tenant_id = %s AND id = ANY(%s)", (tenant_id, list(staff_ids))
    )
    found = {row[0] for row in await cursor.fetchall()}
    for staff_id in staff_ids:
        if staff_id not in found:
            raise NotFound(f"staff member {staff_id}")


def _check_note(note: str | None) -> None:
    if note is not None and len(note) > NOTE_MAX_CHARS:
        raise InvalidValue(f"note: {len(note)} characters, at most {NOTE_MAX_CHARS} allowed")


async def get_alert(conn: AsyncConnection[Any], tenant_id: int, alert_id: int) -> Alert:
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE tenant_id = %s AND id = %s", (tenant_id, alert_id)
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"alert {alert_id}")
    return _alert(row)


async def alerts_by_id(conn: AsyncConnection[Any], alert_ids: Collection[int]) -> dict[int, Alert]:
    """The alerts with these ids, of any tenant (the bus names them by id); missing ones left
    out."""
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE id = ANY(%s)", (list(alert_ids),)
    )
    return {row[0]: _alert(row) for row in await cursor.fetchall()}


async def list_alerts(
    conn: AsyncConnection[Any],
    tenant_id: int,
    *,
    states: Collection[AlertState] | None = None,
    kinds: Collection[AlertKind] | None = None,
    vehicle_id: int | None = None,
    route_run_id: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
) -> list[Alert]:
    """The tenant's alerts, newest opening first; ``since`` <= opened_at < ``until``."""
    if not 1 <= limit <= LIST_MAX:
        raise InvalidValue(f"limit: {limit} is not in 1..{LIST_MAX}")
    clauses = ["tenant_id = %s"]
    params: list[Any] = [tenant_id]
    for clause, value in (
        ("state = ANY(%s)", None if states is None else [str(s) for s in states]),
        ("kind = ANY(%s)", None if kinds is None else [str(k) for k in kinds]),
        ("vehicle_id = %s", vehicle_id),
        ("route_run_id = %s", route_run_id),
        ("opened_at >= %s", since),
        ("opened_at < %s", until),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE {' AND '.join(clauses)}"
        " ORDER BY opened_at DESC, id DESC LIMIT %s",
        (*params, limit),
    )
    return [_alert(row) for row in await cursor.fetchall()]


async def open_alerts(conn: AsyncConnection[Any], tenant_id: int | None = None) -> list[Alert]:
    """Every unresolved alert (of one tenant, or all): what the rules engine resumes from."""
    tenant_clause = "" if tenant_id is None else " AND tenant_id = %s"
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE state <> 'resolved'{tenant_clause}"
        " ORDER BY tenant_id, opened_at, id",
        () if tenant_id is None else (tenant_id,),
    )
    return [_alert(row) for row in await cursor.fetchall()]


def _alert(row: Sequence[Any]) -> Alert:
    return Alert(
        id=row[0],
        key=row[1],
        tenant_id=row[2],
        kind=AlertKind(row[3]),
        severity=Severity(row[4]),
        device_id=row[5],
        vehicle_id=row[6],
        route_run_id=row[7],
        stop_id=row[8],
        stop_seq=row[9],
        opened_at=row[10],
        last_evidence_at=row[11],
        state=AlertState(row[12]),
        message=row[13],
        evidence=row[14],
        resolved_at=row[15],
        resolution=None if row[16] is None else Resolution(row[16]),
        resolved_by=row[17],
        acknowledged_at=row[18],
        acknowledged_by=row[19],
        acknowledge_note=row[20],
        assigned_to=row[21],
        assigned_at=row[22],
        assigned_by=row[23],
        resolve_note=row[24],
    )


async def count_alerts(conn: AsyncConnection[Any], tenant_id: int | None = None) -> dict[str, int]:
    """How many alerts of each kind were opened (all tenants when None)."""
    if tenant_id is None:
        cursor = await conn.execute("SELECT kind, count(*) FROM alerts GROUP BY kind")
    else:
        cursor = await conn.execute(
            "SELECT kind, count(*) FROM alerts WHERE tenant_id = %s GROUP BY kind", (tenant_id,)
        )
    return {row[0]: int(row[1]) for row in await cursor.fetchall()}
