"""Ad-hoc invoices: work outside the plan (an extra collection, a hazardous-waste pickup),
billed from the customer's request or from a recorded stop visit. A line made from a visit
carries its proof of service: when, where, which vehicle and route run, and how the visit
was established (dwell, bin lift, staff confirmation)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

import audit
from billing.drafts import NewLine, check_lines, insert_draft
from billing.errors import InvalidValue, NotFound
from billing.invoice_models import InvoiceKind, InvoiceOrigin


class NewAdhocInvoice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: int = Field(ge=1)
    series_id: int = Field(ge=1)
    lines: list[NewLine] = Field(min_length=1)
    note: str = Field(default="", max_length=2000)  # the request: who asked, when, what


async def visit_proof(
    conn: AsyncConnection[Any], tenant_id: int, stop_visit_id: int
) -> tuple[int | None, dict[str, Any]]:
    """The recorded visit's service point and its proof of service."""
    cursor = await conn.execute(
        "SELECT v.service_point_id, v.arrival_at, v.departure_at, v.dwell_s, v.lat, v.lon,"
        " v.status, v.evidence, v.route_run_id, v.stop_seq, ve.code"
        " FROM stop_visits v LEFT JOIN vehicles ve ON ve.id = v.vehicle_id"
        " WHERE v.tenant_id = %s AND v.id = %s",
        (tenant_id, stop_visit_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"stop visit {stop_visit_id} does not exist")
    point_id, arrival, departure, dwell, lat, lon, status, evidence, run_id, seq, vehicle = row
    if status != "visited":
        raise InvalidValue(
            f"stop_visit_id: visit {stop_visit_id} is only {status}; a bill needs a visit"
        )
    return point_id, {
        "stop_visit_id": stop_visit_id,
        "arrival_at": arrival.isoformat(),
        "departure_at": departure.isoformat() if departure else None,
        "dwell_s": round(float(dwell), 1),
        "lat": lat,
        "lon": lon,
        "evidence": evidence,
        "route_run_id": run_id,
        "stop_seq": seq,
        "vehicle": vehicle,
    }


async def create_adhoc_invoice(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    new: NewAdhocInvoice,
) -> int:
    """Draft an ad-hoc invoice; lines naming a stop visit take its service point (when
    they name none) and its proof. The draft's id."""
    check_lines(new.lines, allow_negative=False)
    lines = []
    proofs: dict[int, dict[str, Any]] = {}
    for index, line in enumerate(new.lines):
        if line.stop_visit_id is None:
            lines.append(line)
            continue
        point_id, proof = await visit_proof(conn, tenant_id, line.stop_visit_id)
        if line.service_point_id is not None and point_id != line.service_point_id:
            raise InvalidValue(
                f"lines[{index}].stop_visit_id: visit {line.stop_visit_id} was at service point"
                f" {point_id}, not {line.service_point_id}"
            )
        arrival = dt.datetime.fromisoformat(proof["arrival_at"])
        lines.append(
            line.model_copy(
                update={
                    "service_point_id": point_id,
                    "period_start": line.period_start or arrival.date(),
                    "period_end": line.period_end or arrival.date() + dt.timedelta(days=1),
                }
            )
        )
        proofs[index] = proof
    return await insert_draft(
        conn,
        tenant_id,
        actor,
        now,
        customer_id=new.customer_id,
        series_id=new.series_id,
        kind=InvoiceKind.ORIGINAL,
        origin=InvoiceOrigin.ADHOC,
        lines=lines,
        proofs=proofs,
        note=new.note,
    )
