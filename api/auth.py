"""Who is calling: bearer tokens mapped to a principal of one tenant.

The dispatcher API (users, roles) will bring an ``Authenticator`` backed by the database;
until then ``StaticTokens`` serves the demo, the tests and single-tenant deployments.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import HTTPConnection


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; everything it may see belongs to ``tenant_id``."""

    tenant_id: int
    name: str


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None:
        """The principal ``token`` stands for, or None when it stands for nobody."""
        ...


class StaticTokens:
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


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of ``Authorization: Bearer <token>``, else of the ``token`` query parameter.

    Browsers cannot set headers on a WebSocket upgrade, hence the query parameter; keep
    request logging at warning level where it is used, since it would log the token.
    """
    scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return connection.query_params.get("token") or None
