"""Tariff versions: the only code that reads or writes ``tariff_versions``.

Every function takes an open connection; the caller owns the transaction. Tariff writes
are serialised per tenant by an advisory lock and audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

import audit
from billing.charges import TariffBook
from billing.errors import Conflict, InvalidValue, NotFound
from billing.periods import FIRST_YEAR, LAST_YEAR, Period
from billing.tariffs import PARAMS, NewTariffVersion, TariffVersion
from customers.models import Service

_TARIFF_COLUMNS = (
    "id, code, name, legal_basis, area_group, customer_class, service, basis, params,"
    " vat_rate, valid_from, valid_to, created_by, created_at"
)


def _tariff(row: tuple[Any, ...]) -> TariffVersion:
    (id_, code, name, legal_basis, area_group, customer_class, service, basis, params) = row[:9]
    vat_rate, valid_from, valid_to, created_by, created_at = row[9:]
    return TariffVersion(
        id=id_,
        code=code,
        name=name,
        legal_basis=legal_basis,
        area_group=area_group,
        customer_class=customer_class,
        service=Service(service),
        params=PARAMS.validate_python({**params, "basis": basis}),
        vat_rate=vat_rate,
        valid_from=valid_from,
        valid_to=valid_to,
        created_by=created_by,
        created_at=created_at,
    )


def _audited(version: TariffVersion) -> dict[str, Any]:
    return version.model_dump(mode="json", exclude={"created_at"})


def _validity(valid_from: dt.date, valid_to: dt.date | None) -> str:
    return f"{valid_from.isoformat()} to {valid_to.isoformat() if valid_to else 'open'}"


async def _lock_tariffs(conn: AsyncConnection[Any], tenant_id: int) -> None:
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('billing.tariff_versions', %s))",
        (tenant_id,),
    )


async def get_tariff_version(
    conn: AsyncConnection[Any], tenant_id: int, version_id: int
) -> TariffVersion:
    cursor = await conn.execute(
        f"SELECT {_TARIFF_COLUMNS} FROM tariff_versions WHERE tenant_id = %s AND id = %s",
        (tenant_id, version_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"tariff version {version_id} not found")
    return _tariff(row)


async def list_tariff_versions(
    conn: AsyncConnection[Any],
    tenant_id: int,
    *,
    area_group: str | None = None,
    customer_class: str | None = None,
    service: str | None = None,
    valid_on: dt.date | None = None,
) -> list[TariffVersion]:
    """By area group, customer class, service, then validity; ``valid_on``: only the
    versions in force that day."""
    where = ["tenant_id = %(tenant)s"]
    if area_group is not None:
        where.append("area_group = %(area_group)s")
    if customer_class is not None:
        where.append("customer_class = %(customer_class)s")
    if service is not None:
        where.append("service = %(service)s")
    if valid_on is not None:
        where.append("valid_from <= %(on)s AND (valid_to IS NULL OR valid_to > %(on)s)")
    cursor = await conn.execute(
        f"SELECT {_TARIFF_COLUMNS} FROM tariff_versions WHERE {' AND '.join(where)}"
        " ORDER BY area_group, customer_class, service, valid_from",
        {
            "tenant": tenant_id,
            "area_group": area_group,
            "customer_class": customer_class,
            "service": None if service is None else str(service),
            "on": valid_on,
        },
    )
    return [_tariff(row) for row in await cursor.fetchall()]


async def create_tariff_version(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    new: NewTariffVersion,
) -> TariffVersion:
    """Store a tariff version. Conflict when its validity overlaps another version of the
    same area group, customer class and service (the message names it), or its code is
    taken."""
    await _lock_tariffs(conn, tenant_id)
    cursor = await conn.execute(
        "SELECT id, code, valid_from, valid_to FROM tariff_versions"
        " WHERE tenant_id = %s AND area_group = %s AND customer_class = %s AND service = %s"
        " AND valid_from < coalesce(%s::date, 'infinity')"
        " AND coalesce(valid_to, 'infinity') > %s ORDER BY valid_from LIMIT 1",
        (
            tenant_id,
            new.area_group,
            new.customer_class,
            str(new.service),
            new.valid_to,
            new.valid_from,
        ),
    )
    clash = await cursor.fetchone()
    if clash is not None:
        raise Conflict(
            f"valid_from: {_validity(new.valid_from, new.valid_to)} overlaps tariff version"
            f" {clash[1]} (id {clash[0]}, valid {_validity(clash[2], clash[3])}) of area_group"
            f" {new.area_group}, customer_class {new.customer_class}, service {new.service};"
            " close it first"
        )
    cursor = await conn.execute(
        "SELECT id FROM tariff_versions WHERE tenant_id = %s AND code = %s",
        (tenant_id, new.code),
    )
    taken = await cursor.fetchone()
    if taken is not None:
        raise Conflict(f"code: {new.code} is already used by tariff version {taken[0]}")
    params = new.params.model_dump(mode="json", exclude={"basis"})
    cursor = await conn.execute(
        "INSERT INTO tariff_versions (tenant_id, code, name, legal_basis, area_group,"
        " customer_class, service, basis, params, vat_rate, valid_from, valid_to, created_by,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        f" RETURNING {_TARIFF_COLUMNS}",
        (
            tenant_id,
            new.code,
            new.name,
            new.legal_basis,
            new.area_group,
            new.customer_class,
            str(new.service),
            str(new.basis),
            Jsonb(params),
            str(new.vat_rate),
            new.valid_from,
            new.valid_to,
            actor.user_id,
            at,
        ),
    )
    row = await cursor.fetchone()
    assert row is not None
    version = _tariff(row)
    await audit.record(
        conn,
        tenant_id,
        actor,
        at,
        audit.Change("tariff_version", version.id, "create", None, _audited(version)),
    )
    return version


async def close_tariff_version(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    version_id: int,
    valid_to: dt.date,
) -> TariffVersion:
    """End a version's validity on ``valid_to`` (exclusive), so that a new version can take
    over from that day. Prices are never edited; validity only ever shortens."""
    await _lock_tariffs(conn, tenant_id)
    version = await get_tariff_version(conn, tenant_id, version_id)
    if not FIRST_YEAR <= valid_to.year <= LAST_YEAR:
        raise InvalidValue(
            f"valid_to: {valid_to.isoformat()} is outside the years {FIRST_YEAR} to {LAST_YEAR}"
        )
    if valid_to <= version.valid_from:
        raise InvalidValue(
            f"valid_to: {valid_to.isoformat()} must be after the version's valid_from"
            f" ({version.valid_from.isoformat()})"
        )
    if version.valid_to == valid_to:
        return version
    if version.valid_to is not None and valid_to > version.valid_to:
        raise Conflict(
            f"valid_to: {valid_to.isoformat()} would extend tariff version {version.code}"
            f" beyond {version.valid_to.isoformat()}; a version only ever ends earlier:"
            " create a new version instead"
        )
    await conn.execute(
        "UPDATE tariff_versions SET valid_to = %s WHERE tenant_id = %s AND id = %s",
        (valid_to, tenant_id, version_id),
    )
    await audit.record(
        conn,
        tenant_id,
        actor,
        at,
        audit.Change(
            "tariff_version",
            version_id,
            "close",
            {"valid_to": version.valid_to},
            {"valid_to": valid_to},
        ),
    )
    return version.model_copy(update={"valid_to": valid_to})


async def tariff_book(conn: AsyncConnection[Any], tenant_id: int, period: Period) -> TariffBook:
    """The versions in force on some day of ``period``, to price it."""
    cursor = await conn.execute(
        f"SELECT {_TARIFF_COLUMNS} FROM tariff_versions WHERE tenant_id = %s"
        " AND valid_from < %s AND (valid_to IS NULL OR valid_to > %s)",
        (tenant_id, period.end, period.start),
    )
    return TariffBook(_tariff(row) for row in await cursor.fetchall())
