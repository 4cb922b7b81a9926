"""Login, logout, who am I, and the users of a tenant (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

import accounts
import fleet
from accounts import Role
from api.auth import Principal, allow
from api.context import Admin, Ctx, ObjectId
from api.live_messages import utc_text

router = APIRouter(prefix="/api/v1", tags=["auth"])
Anyone = Annotated[Principal, Depends(allow(frozenset(Role)))]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]{1,64}$")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=accounts.service.MAX_PASSWORD_CHARS)


class NewUserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9._@-]{1,64}$")
    full_name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str = Field(
        min_length=accounts.service.MIN_PASSWORD_CHARS,
        max_length=accounts.service.MAX_PASSWORD_CHARS,
    )
    staff_id: int | None = Field(None, ge=1, le=2**63 - 1)
    customer_id: int | None = Field(None, ge=1, le=2**63 - 1)


class PasswordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(
        min_length=accounts.service.MIN_PASSWORD_CHARS,
        max_length=accounts.service.MAX_PASSWORD_CHARS,
    )


def user_json(user: accounts.User, tenant: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role.value,
        "staff_id": user.staff_id,
        "customer_id": user.customer_id,
        "active": user.active,
        "locked_until": utc_text(user.locked_until) if user.locked_until else None,
    }
    if tenant is not None:
        body["tenant"] = tenant
    return body


@router.post("/auth/login")
async def login(body: LoginRequest, request: Request, ctx: Ctx) -> dict[str, Any]:
    """A token for the right password. Wrong passwords count towards a lock-out (423);
    too many attempts from one address are slowed down (429 with Retry-After)."""
    client = request.client.host if request.client else "unknown"
    assert ctx.throttle is not None
    wait_s = ctx.throttle.retry_after_s(client)
    if wait_s > 0:
        raise HTTPException(
            429,
            detail={"field": None, "reason": "too many login attempts; wait and try again"},
            headers={"Retry-After": str(max(1, round(wait_s)))},
        )
    async with ctx.pool.connection() as conn:
        issued = await accounts.login(
            conn,
            body.tenant,
            body.username.lower(),
            body.password,
            ctx.clock.now(),
            ctx.login_policy,
            client=request.headers.get("user-agent", "")[:200],
        )
    return {
        "token": issued.token,
        "expires_at": utc_text(issued.session.expires_at),
        "user": user_json(issued.session.user, body.tenant),
    }


@router.post("/auth/logout", status_code=204)
async def logout(principal: Anyone, ctx: Ctx) -> Response:
    """Revoke the token this call was made with."""
    if principal.token_id is not None:
        async with ctx.pool.connection() as conn:
            await accounts.revoke_token(
                conn, principal.tenant_id, principal.token_id, ctx.clock.now()
            )
    return Response(status_code=204)


@router.get("/me")
async def me(principal: Anyone, ctx: Ctx) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        tenant = await fleet.get_tenant_by_id(conn, principal.tenant_id)
        if principal.user_id is None:
            return {
                "id": None,
                "username": principal.name,
                "full_name": principal.name,
                "role": principal.role.value,
                "tenant": tenant.slug,
            }
        user = await accounts.get_user(conn, principal.tenant_id, principal.user_id)
    return user_json(user, tenant.slug)


@router.get("/users")
async def list_users(principal: Admin, ctx: Ctx) -> list[dict[str, Any]]:
    async with ctx.pool.connection() as conn:
        return [user_json(u) for u in await accounts.list_users(conn, principal.tenant_id)]


@router.post("/users", status_code=201)
async def create_user(body: NewUserRequest, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    new = accounts.NewUser(
        body.username, body.full_name, body.role, body.password, body.staff_id, body.customer_id
    )
    async with ctx.pool.connection() as conn:
        return user_json(await accounts.create_user(conn, principal.tenant_id, new))


@router.post("/users/{user_id}/password", status_code=204)
async def set_password(
    user_id: ObjectId, body: PasswordRequest, principal: Anyone, ctx: Ctx
) -> Response:
    """An admin sets anyone's password; others only their own. Every token of the user is
    revoked."""
    if principal.role is not Role.ADMIN and principal.user_id != user_id:
        raise HTTPException(403, detail={"field": None, "reason": "only your own password"})
    async with ctx.pool.connection() as conn:
        await accounts.set_password(
            conn, principal.tenant_id, user_id, body.password, ctx.clock.now()
        )
    return Response(status_code=204)


@router.post("/users/{user_id}/disable")
async def disable_user(user_id: ObjectId, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """The user can no longer log in and every token of theirs stops working at once."""
    if principal.user_id == user_id:
        raise HTTPException(409, detail={"field": None, "reason": "you cannot disable yourself"})
    async with ctx.pool.connection() as conn:
        user = await accounts.set_active(conn, principal.tenant_id, user_id, False, ctx.clock.now())
    return user_json(user)


@router.post("/users/{user_id}/enable")
async def enable_user(user_id: ObjectId, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Able to log in again; a lock-out is lifted too."""
    async with ctx.pool.connection() as conn:
        user = await accounts.set_active(conn, principal.tenant_id, user_id, True, ctx.clock.now())
    return user_json(user)
