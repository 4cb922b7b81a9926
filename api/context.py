"""What the HTTP endpoints share, set once on ``app.state.ctx`` when the app is built."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Request
from pydantic import AfterValidator, AwareDatetime

from accounts import LoginPolicy, LoginThrottle
from api.auth import ADMINISTER, OPERATE, READ_OPERATIONS, Principal, allow
from api.live import LiveFeed
from sanitrack.clock import Clock
from sanitrack.settings import ApiSettings, CustomersSettings, PlanningSettings
from storage import Pool, PositionsBackend

# Called with a device's broker username after its secret was rotated or it was revoked:
# the broker forgets the cached login and disconnects the device's live session.
CredentialsChanged = Callable[[str], Awaitable[None]]

MAX_ID = 2**63 - 1


@dataclass(slots=True)
class ApiContext:
    pool: Pool
    clock: Clock
    settings: ApiSettings
    positions_backend: PositionsBackend
    feed: LiveFeed | None = None
    credentials_changed: CredentialsChanged | None = None
    throttle: LoginThrottle | None = None
    customers: CustomersSettings = field(default_factory=CustomersSettings)
    planning: PlanningSettings = field(default_factory=PlanningSettings)

    def __post_init__(self) -> None:
        if self.throttle is None:
            self.throttle = LoginThrottle(
                self.clock, self.settings.login_per_minute, self.settings.login_burst
            )

    @property
    def login_policy(self) -> LoginPolicy:
        return LoginPolicy(
            self.settings.max_failed_logins, self.settings.lockout_s, self.settings.token_ttl_s
        )


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]
Reader = Annotated[Principal, Depends(allow(READ_OPERATIONS))]
Operator = Annotated[Principal, Depends(allow(OPERATE))]
Admin = Annotated[Principal, Depends(allow(ADMINISTER))]
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="the object's id")]

# Dates and instants the system can hold: years 2000-2100 (beyond, time zone arithmetic
# overflows and nothing is stored there anyway).
FIRST_YEAR, LAST_YEAR = 2000, 2100


def _in_years(value: dt.date) -> dt.date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be in the years {FIRST_YEAR} to {LAST_YEAR}")
    return value


def _instant_in_years(value: dt.datetime) -> dt.datetime:
    _in_years(value.date())
    return value


LocalDate = Annotated[dt.date, AfterValidator(_in_years)]
Instant = Annotated[AwareDatetime, AfterValidator(_instant_in_years)]
