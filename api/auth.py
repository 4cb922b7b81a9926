"""Who is calling: a bearer token mapped to a principal of one tenant with one role.

``SessionTokens`` looks tokens up in the database (issued by login, expiring, revocable);
``StaticTokens`` serves fixed tokens from settings (single-tenant deployments, tools).
Endpoints declare the roles they allow with ``allow(...)``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

import accounts
import audit
from accounts import Role
from sanitrack.clock import Clock
from storage import Pool


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; everything it may see belongs to ``tenant_id``."""

    tenant_id: int
    name: str
    role: Role = Role.DISPATCHER
    user_id: int | None = None
    staff_id: int | None = None  # who acts on alerts; None for static tokens and customers
    token_id: int | None = None

    @property
    def actor(self) -> audit.Actor:
        """Who the audit log says made a change this caller asked for."""
        return audit.Actor(self.name, self.user_id)


class Authenticator:
    """The principal a token stands for, or None when it stands for nobody."""

    async def authenticate(self, token: str) -> Principal | None:
        raise NotImplementedError


class StaticTokens(Authenticator):
    """A fixed token -> principal table (from settings or a test)."""

    def __init__(self, mapping: Mapping[str, Principal]) -> None:
        if any(not token for token in mapping):
            raise ValueError("StaticTokens: an empty token would let anyone in")
        self._tokens = [(token.encode(), principal) for token, principal in mapping.items()]

    async def authenticate(self, token: str) -> Principal | None:
        candidate = token.encode()
        found: Principal | None = None
        # Every entry is compared, in constant time each, so the answer's timing does not
        # tell how close a guess came nor which entry it matched.
        for known, principal in self._tokens:
            if hmac.compare_digest(candidate, known):
                found = principal
        return found


class SessionTokens(Authenticator):
    """Tokens issued by login: checked against the database on every call, so expiry,
    logout, a password change and a disabled user take effect at once."""

    def __init__(self, pool: Pool, clock: Clock, fallback: Authenticator | None = None) -> None:
        self._pool = pool
        self._clock = clock
        self._fallback = fallback

    async def authenticate(self, token: str) -> Principal | None:
        async with self._pool.connection() as conn:
            session = await accounts.session_for(conn, token, self._clock.now())
        if session is None:
            return await self._fallback.authenticate(token) if self._fallback else None
        user = session.user
        return Principal(
            user.tenant_id, user.username, user.role, user.id, user.staff_id, session.token_id
        )


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of ``Authorization: Bearer <token>``, else of the ``token`` query parameter.

    Browsers cannot set headers on a WebSocket upgrade, hence the query parameter; keep
    request logging at warning level where it is used, since it would log the token.
    """
    scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return connection.query_params.get("token") or None


# Who may do what; every endpoint names one of these.
READ_OPERATIONS = frozenset({Role.ADMIN, Role.DISPATCHER, Role.ACCOUNTANT})
OPERATE = frozenset({Role.ADMIN, Role.DISPATCHER})
ADMINISTER = frozenset({Role.ADMIN})


def allow(roles: frozenset[Role]) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller's principal when its role is in ``roles``;
    401 without a valid token, 403 with a role that may not."""

    async def dependency(request: Request) -> Principal:
        authenticator: Authenticator = request.app.state.authenticator
        token = bearer_token(request)
        principal = await authenticator.authenticate(token) if token else None
        if principal is None:
            raise HTTPException(
                401,
                detail={"field": "authorization", "reason": "a valid bearer token is required"},
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.role not in roles:
            raise HTTPException(
                403,
                detail={
                    "field": None,
                    "reason": f"the role {principal.role.value} may not do this",
                },
            )
        return principal

    return dependency
