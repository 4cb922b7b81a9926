"""Tariffs and charges: tariff versions (read by the office, written by accountants) and
charge runs per billing period."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

import billing
from accounts import Role
from api.auth import Principal, allow
from api.context import MAX_ID, Ctx, LocalDate, ObjectId, Reader
from customers.models import BillingPeriod, Service

router = APIRouter(prefix="/api/v1", tags=["billing"])

Accounting = Annotated[Principal, Depends(allow(frozenset({Role.ADMIN, Role.ACCOUNTANT})))]


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valid_to: LocalDate


class ChargeRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_start: LocalDate
    billing_period: BillingPeriod


def tariff_json(version: billing.TariffVersion) -> dict[str, Any]:
    return version.model_dump(mode="json")


def charge_json(charge: billing.Charge) -> dict[str, Any]:
    return {
        "id": charge.id,
        "customer_id": charge.customer_id,
        "service_point_id": charge.service_point_id,
        "period_start": charge.period_start.isoformat(),
        "period_end": charge.period_end.isoformat(),
        "service": charge.service,
        "component": charge.component,
        "tariff_version_id": charge.tariff_version_id,
        "quantity": str(charge.quantity),
        "unit": charge.unit,
        "amount_vnd": charge.amount_vnd,
        "vat_rate": charge.vat_rate,
        "detail": charge.detail,
        "computed_at": charge.computed_at.isoformat(),
        "invoice_id": charge.invoice_id,
    }


def run_json(run: billing.ChargeRun) -> dict[str, Any]:
    return {
        "period_start": run.period_start.isoformat(),
        "period_end": run.period_end.isoformat(),
        "billing_period": run.billing_period.value,
        "points": run.points,
        "rows_computed": run.rows_computed,
        "rows_written": run.rows_written,
        "rows_unchanged": run.rows_unchanged,
        "rows_invoiced": run.rows_invoiced,
        "rows_removed": run.rows_removed,
        "total_vnd": run.total_vnd,
        "problems_count": run.problems_count,
        "problems": [
            {"service_point_id": p.point_id, "service": p.service, "reason": p.reason}
            for p in run.problems
        ],
    }


@router.get("/tariffs")
async def list_tariffs(
    principal: Reader,
    ctx: Ctx,
    area_group: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,32}$")] = None,
    customer_class: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,32}$")] = None,
    service: Service | None = None,
    valid_on: Annotated[LocalDate | None, Query()] = None,
) -> list[dict[str, Any]]:
    """By area group, customer class, service and validity; ``valid_on``: only the versions
    in force that day."""
    async with ctx.pool.connection() as conn:
        versions = await billing.list_tariff_versions(
            conn,
            principal.tenant_id,
            area_group=area_group,
            customer_class=customer_class,
            service=service,
            valid_on=valid_on,
        )
    return [tariff_json(v) for v in versions]


@router.get("/tariffs/{tariff_id}")
async def get_tariff(tariff_id: ObjectId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        return tariff_json(await billing.get_tariff_version(conn, principal.tenant_id, tariff_id))


@router.post("/tariffs", status_code=201)
async def create_tariff(
    body: billing.NewTariffVersion, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """A new tariff version; 409 when its validity overlaps another version of the same
    area group, customer class and service (close that one first)."""
    async with ctx.pool.connection() as conn, conn.transaction():
        version = await billing.create_tariff_version(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), body
        )
    return tariff_json(version)


@router.post("/tariffs/{tariff_id}/close")
async def close_tariff(
    tariff_id: ObjectId, body: CloseRequest, principal: Accounting, ctx: Ctx
) -> dict[str, Any]:
    """End a version on ``valid_to`` (exclusive); prices are never edited."""
    async with ctx.pool.connection() as conn, conn.transaction():
        version = await billing.close_tariff_version(
            conn, principal.tenant_id, principal.actor, ctx.clock.now(), tariff_id, body.valid_to
        )
    return tariff_json(version)


@router.post("/charges/runs")
async def run_charges(body: ChargeRunRequest, principal: Accounting, ctx: Ctx) -> dict[str, Any]:
    """Compute the period's charges for every customer billed that way; charges an invoice
    has taken are left alone. Running it again changes nothing."""
    async with ctx.pool.connection() as conn, conn.transaction():
        run = await billing.compute_charges(
            conn, principal.tenant_id, body.period_start, body.billing_period, now=ctx.clock.now()
        )
    return run_json(run)


@router.get("/charges")
async def list_charges(
    principal: Reader,
    ctx: Ctx,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    service_point_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    period_start: Annotated[LocalDate | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> list[dict[str, Any]]:
    """By period, service point, service and component."""
    async with ctx.pool.connection() as conn:
        charges = await billing.charges_of(
            conn,
            principal.tenant_id,
            customer_id=customer_id,
            service_point_id=service_point_id,
            period_start=period_start,
            limit=limit,
        )
    return [charge_json(c) for c in charges]
