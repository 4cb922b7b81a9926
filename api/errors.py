"""Every error answers ``{"error": {"field": ..., "reason": ...}}`` with a 4xx status.

Domain packages raise their own NotFound / Conflict / InvalidValue; the messages of
InvalidValue start with the field ("note: 2100 characters, at most 2000 allowed"), which
is split off here. Nothing a client sends may make a 500: what slips through is Starlette's
plain 500, logged with its traceback, and the schemathesis test looks for it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import errors as pg_errors

import accounts
import alerts
import billing
import customers
import fleet
import planning

log = logging.getLogger(__name__)

_NOT_FOUND = (
    accounts.NotFound,
    alerts.NotFound,
    billing.NotFound,
    customers.NotFound,
    fleet.NotFound,
    planning.NotFound,
)
_CONFLICT = (
    accounts.Conflict,
    alerts.Conflict,
    billing.Conflict,
    customers.Conflict,
    fleet.Conflict,
    planning.Conflict,
)
_INVALID = (
    accounts.InvalidValue,
    alerts.InvalidValue,
    billing.InvalidValue,
    customers.InvalidValue,
    fleet.InvalidValue,
    # every other planning error (no feasible plan, an engine that cannot model the day, no
    # road to a place) is about the request's day too
    planning.PlanningError,
)


def error_body(field: str | None, reason: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"field": field, "reason": reason, **extra}}


def _split(message: str) -> tuple[str | None, str]:
    field, sep, reason = message.partition(": ")
    if sep and field and " " not in field.strip():
        return field, reason
    return None, message


def _loc_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    name = ""
    for part in parts:
        name += f"[{part}]" if part.isdigit() else (f".{part}" if name else part)
    return name or "body"


def install_error_handlers(app: FastAPI, extra_not_found: tuple[type[Exception], ...] = ()) -> None:
    not_found: tuple[type[Exception], ...] = (*_NOT_FOUND, *extra_not_found)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": _loc_name(tuple(e["loc"])), "reason": str(e["msg"])} for e in exc.errors()
        ]
        field, reason = (
            (problems[0]["field"], problems[0]["reason"]) if problems else (None, "invalid")
        )
        return JSONResponse(error_body(field, reason, problems=problems[:20]), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail
        if isinstance(detail, dict):
            body = error_body(detail.get("field"), str(detail.get("reason", "")))
        else:
            body = error_body(None, str(detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, not_found):
            return JSONResponse(error_body(None, str(exc) or "not found"), status_code=404)
        if isinstance(exc, _CONFLICT):
            return JSONResponse(error_body(*_split(str(exc))), status_code=409)
        if isinstance(exc, _INVALID):
            return JSONResponse(error_body(*_split(str(exc))), status_code=422)
        if isinstance(exc, accounts.LockedOut):
            return JSONResponse(
                error_body(None, str(exc), locked_until=exc.until_iso), status_code=423
            )
        if isinstance(exc, accounts.LoginRefused):
            return JSONResponse(error_body(None, str(exc)), status_code=401)
        assert isinstance(exc, pg_errors.DataError | pg_errors.IntegrityError)
        if "NUL" in str(exc):  # psycopg refuses text with U+0000 before sending it
            return JSONResponse(
                error_body(None, "text must not contain NUL (U+0000) characters"),
                status_code=422,
            )
        # A value the database refused that validation let through: the client's, so a
        # 4xx, but logged: the validation should have caught it with a better reason.
        log.warning("database refused a request's value: %s", exc)
        reason = exc.diag.message_primary or "a value was refused"
        return JSONResponse(error_body(None, reason), status_code=422)

    # Registered per class, so that Starlette's exception middleware answers them; a
    # handler for Exception itself would answer and then re-raise (logged as a crash).
    for error_class in (
        *not_found,
        *_CONFLICT,
        *_INVALID,
        accounts.LockedOut,
        accounts.LoginRefused,
        pg_errors.DataError,
        pg_errors.IntegrityError,
    ):
        app.add_exception_handler(error_class, domain_error)
