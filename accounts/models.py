"""Roles, users and the sessions their tokens stand for."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    ACCOUNTANT = "accountant"
    CASHIER = "cashier"
    COLLECTOR = "collector"
    DRIVER = "driver"
    CUSTOMER = "customer"


STAFF_ROLES = frozenset(Role) - {Role.CUSTOMER}


@dataclass(frozen=True, slots=True)
class User:
    id: int
    tenant_id: int
    username: str
    full_name: str
    role: Role
    staff_id: int | None
    customer_id: int | None
    active: bool
    locked_until: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Session:
    """Who a valid token stands for, and until when."""

    user: User
    token_id: int
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: ``token`` is shown once and stored only as its digest."""

    token: str
    session: Session
