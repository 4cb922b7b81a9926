"""Append, read and verify the audit log.

Each tenant's entries form one chain: entry ``seq`` stores ``hash = SHA-256(prev_hash ||
canonical JSON of the entry)`` where ``prev_hash`` is the hash of entry ``seq - 1`` (32 zero
bytes for the first). Appending locks the tenant's head row, so concurrent writers chain in
commit order without gaps. Triggers refuse UPDATE, DELETE and TRUNCATE; the chain catches
what a superuser does around them.

Values in ``before`` and ``after`` are made JSON-native first (dates and times as ISO
text, Decimals as text, enums as their values), so that what is read back hashes the same.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg import AsyncConnection

GENESIS = bytes(32)


class AuditError(Exception):
    """Base of audit errors."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a signed-in user, or a named process (``import``, ``system``)."""

    name: str
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    entity: str  # customer, service_point, tariff_version, assignment, change_request...
    entity_id: int
    action: str  # create, update, move, approve, apply...
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    customer_id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str
    actor_user: int | None
    entity: str
    entity_id: int
    customer_id: int | None
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    hash_hex: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    reason: str


def jsonable(value: Any) -> Any:
    """``value`` as JSON-native data that survives a round trip through jsonb unchanged."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, float):
        # jsonb's numbers have no -0 (it reads back as 0.0) and print 1e20 as an integer:
        # make the first 0.0 and keep the second as text, so both hash the same read back.
        if value == 0:
            return 0.0
        return value if abs(value) < 1e15 else repr(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    raise AuditError(f"audit: cannot record a {type(value).__name__} value")


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON: keys sorted, no spaces, UTF-8 (what is hashed)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _entry_hash(
    prev_hash: bytes,
    tenant_id: int,
    seq: int,
    at: dt.datetime,
    actor: Actor,
    change: Change,
    before_json: bytes,
    after_json: bytes,
) -> bytes:
    """SHA-256 of the previous hash and the canonical JSON array of the entry's fields
    (``before_json`` / ``after_json`` are their canonical JSON, ``null`` for none)."""
    head = canonical_json(
        [
            tenant_id,
            seq,
            at.astimezone(dt.UTC).isoformat(),
            actor.user_id,
            actor.name,
            change.entity,
            change.entity_id,
            change.customer_id,
            change.action,
        ]
    )
    return hashlib.sha256(
        prev_hash + head[:-1] + b"," + before_json + b"," + after_json + b"]"
    ).digest()


async def record(
    conn: AsyncConnection[Any], tenant_id: int, actor: Actor, at: dt.datetime, change: Change
) -> int:
    """Append one entry in the caller's transaction; its ``seq``."""
    return (await record_many(conn, tenant_id, actor, at, [change]))[0]


async def record_many(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: Actor,
    at: dt.datetime,
    changes: Iterable[Change],
) -> list[int]:
    """Append entries in order, in the caller's transaction (COPY: imports append 100,000s).

    Holds the tenant's chain head until the transaction ends.
    """
    if at.tzinfo is None:
        raise AuditError("audit: the time of a change must carry its time zone")
    changes = list(changes)
    if not changes:
        return []
    await conn.execute(
        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (%s, 0, %s)"
        " ON CONFLICT (tenant_id) DO NOTHING",
        (tenant_id, GENESIS),
    )
    cursor = await conn.execute(
        "SELECT seq, hash FROM audit_heads WHERE tenant_id = %s FOR UPDATE", (tenant_id,)
    )
    head = await cursor.fetchone()
    assert head is not None
    seq, prev_hash = int(head[0]), bytes(head[1])
    seqs = []
    async with cursor.copy(
        "COPY audit_log (tenant_id, seq, at, actor_user, actor, entity, entity_id, customer_id,"
        " action, before, after, prev_hash, hash) FROM STDIN"
    ) as copy:
        for change in changes:
            seq += 1
            before = canonical_json(jsonable(change.before))
            after = canonical_json(jsonable(change.after))
            digest = _entry_hash(prev_hash, tenant_id, seq, at, actor, change, before, after)
            # The canonical text goes to jsonb as it is: serialised once, hashed as stored.
            await copy.write_row(
                (
                    tenant_id,
                    seq,
                    at,
                    actor.user_id,
                    actor.name,
                    change.entity,
                    change.entity_id,
                    change.customer_id,
                    change.action,
                    before.decode() if change.before is not None else None,
                    after.decode() if change.after is not None else None,
                    prev_hash,
                    digest,
                )
            )
            seqs.append(seq)
            prev_hash = digest
    await conn.execute(
        "UPDATE audit_heads SET seq = %s, hash = %s WHERE tenant_id = %s",
        (seq, prev_hash, tenant_id),
    )
    return seqs


_COLUMNS = (
    "seq, at, actor, actor_user, entity, entity_id, customer_id, action, before, after,"
    " prev_hash, hash"
)


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    return AuditEntry(
        seq=row[0],
        at=row[1],
        actor=row[2],
        actor_user=row[3],
        entity=row[4],
        entity_id=row[5],
        customer_id=row[6],
        action=row[7],
        before=row[8],
        after=row[9],
        hash_hex=bytes(row[11]).hex(),
    )


async def history(
    conn: AsyncConnection[Any],
    tenant_id: int,
    *,
    customer_id: int | None = None,
    entity: str | None = None,
    entity_id: int | None = None,
    limit: int = 200,
    before_seq: int | None = None,
) -> list[AuditEntry]:
    """Entries newest first: of one customer (its own, its service points', its change
    requests'), or of one entity; ``before_seq`` pages back."""
    where = ["tenant_id = %s"]
    params: list[Any] = [tenant_id]
    if customer_id is not None:
        where.append("customer_id = %s")
        params.append(customer_id)
    if entity is not None:
        where.append("entity = %s")
        params.append(entity)
    if entity_id is not None:
        where.append("entity_id = %s")
        params.append(entity_id)
    if before_seq is not None:
        where.append("seq < %s")
        params.append(before_seq)
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM audit_log WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT %s",
        [*params, limit],
    )
    return [_entry(row) for row in await cursor.fetchall()]


async def verify_chain(
    conn: AsyncConnection[Any], tenant_id: int, *, max_breaks: int = 100
) -> list[ChainBreak]:
    """Recompute the tenant's chain; every place it breaks (empty: intact).

    Finds an edited entry (its hash no longer matches), a deleted one (a gap in ``seq``, or
    a ``prev_hash`` that is not the previous entry's hash) and a cut tail (the head names a
    later entry than the last one stored).
    """
    breaks: list[ChainBreak] = []
    expected_seq, prev_hash = 1, GENESIS
    async with conn.cursor(name="audit_verify") as cursor:
        await cursor.execute(
            "SELECT seq, at, actor, actor_user, entity, entity_id, customer_id, action,"
            " before, after, prev_hash, hash FROM audit_log WHERE tenant_id = %s ORDER BY seq",
            (tenant_id,),
        )
        async for row in cursor:
            seq = int(row[0])
            if seq != expected_seq:
                breaks.append(
                    ChainBreak(expected_seq, f"entries {expected_seq}..{seq - 1} are missing")
                )
            stored_prev, stored_hash = bytes(row[10]), bytes(row[11])
            if stored_prev != prev_hash:
                breaks.append(ChainBreak(seq, "does not follow the entry before it"))
            change = Change(row[4], row[5], row[7], row[8], row[9], row[6])
            digest = _entry_hash(
                stored_prev, tenant_id, seq, row[1], Actor(row[2], row[3]), change,
                canonical_json(row[8]), canonical_json(row[9]),
            )  # fmt: skip
            if digest != stored_hash:
                breaks.append(ChainBreak(seq, "its content was changed after it was written"))
            expected_seq, prev_hash = seq + 1, stored_hash
            if len(breaks) >= max_breaks:
                return breaks
    cursor2 = await conn.execute(
        "SELECT seq, hash FROM audit_heads WHERE tenant_id = %s", (tenant_id,)
    )
    head = await cursor2.fetchone()
    if head is not None and (int(head[0]) != expected_seq - 1 or bytes(head[1]) != prev_hash):
        breaks.append(ChainBreak(int(head[0]), "the chain's last entries are missing"))
    return breaks
