"""Users, passwords, login with lock-out, and API tokens that expire and can be revoked.

Every function takes the tenant it acts in; another tenant's user answers NotFound.
Passwords are hashed with argon2id (argon2-cffi) off the event loop: one hash costs tens
of milliseconds of CPU by design.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import AsyncConnection, errors

from accounts.errors import Conflict, InvalidValue, LockedOut, LoginRefused, NotFound
from accounts.models import STAFF_ROLES, IssuedToken, Role, Session, User

USERNAME = re.compile(r"[a-z0-9._@-]{1,64}")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256

_hasher = PasswordHasher()
# Verified against when the username is unknown, so that the answer takes as long as for a
# known one and does not tell which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failed_logins: int = 5
    lockout_s: float = 900.0
    token_ttl_s: float = 12 * 3600.0


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    full_name: str
    role: Role
    password: str
    staff_id: int | None = None  # None for a staff role: a staff member is created for them
    customer_id: int | None = None


_USER_COLUMNS = (
    "u.id, u.tenant_id, u.username, u.full_name, u.role, u.staff_id, u.customer_id,"
    " u.active, u.locked_until"
)


def _user(row: Sequence[Any]) -> User:
    return User(row[0], row[1], row[2], row[3], Role(row[4]), row[5], row[6], row[7], row[8])


def check_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidValue(
            f"password: must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )


async def hash_password(password: str) -> str:
    check_password(password)
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(stored_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


async def create_user(conn: AsyncConnection[Any], tenant_id: int, new: NewUser) -> User:
    """A user of ``tenant_id``; a staff role without ``staff_id`` gets a staff member."""
    if not USERNAME.fullmatch(new.username):
        raise InvalidValue(
            "username: 1 to 64 of lower-case letters, digits and . _ @ -"
            f", got {new.username[:80]!r}"
        )
    if not 1 <= len(new.full_name) <= 200:
        raise InvalidValue("full_name: must be 1 to 200 characters")
    password_hash = await hash_password(new.password)
    if new.role is Role.CUSTOMER and new.customer_id is None:
        raise InvalidValue("customer_id: required for the customer role")
    if new.role in STAFF_ROLES and new.customer_id is not None:
        raise InvalidValue("customer_id: only for the customer role")
    async with conn.transaction():
        cursor = await conn.execute(
            "SELECT 1 FROM users WHERE tenant_id = %s AND username = %s",
            (tenant_id, new.username),
        )
        if await cursor.fetchone() is not None:
            raise Conflict(f"username: {new.username!r} exists already")
        staff_id = new.staff_id
        if new.role in STAFF_ROLES:
            staff_id = await _staff_for(conn, tenant_id, new, staff_id)
        else:
            await _check_customer(conn, tenant_id, new.customer_id)
        try:
            cursor = await conn.execute(
                "INSERT INTO users AS u (tenant_id, username, full_name, role, staff_id,"
                " customer_id, password_hash) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_USER_COLUMNS}",
                (
                    tenant_id,
                    new.username,
                    new.full_name,
                    new.role.value,
                    staff_id,
                    new.customer_id,
                    password_hash,
                ),
            )
        except errors.UniqueViolation as exc:
            raise Conflict(f"username: {new.username!r} exists already") from exc
        except errors.CheckViolation as exc:
            raise InvalidValue(
                f"username or full_name: not allowed ({exc.diag.message_primary})"
            ) from exc
        row = await cursor.fetchone()
    assert row is not None
    return _user(row)


async def _staff_for(
    conn: AsyncConnection[Any], tenant_id: int, new: NewUser, staff_id: int | None
) -> int:
    if staff_id is not None:
        cursor = await conn.execute(
            "SELECT id FROM staff WHERE id = %s AND tenant_id = %s", (staff_id, tenant_id)
        )
        if await cursor.fetchone() is None:
            raise NotFound(f"staff_id: no staff member {staff_id}")
        return staff_id
    cursor = await conn.execute(
        "INSERT INTO staff (tenant_id, code, full_name, role) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, code) DO NOTHING RETURNING id",
        (tenant_id, new.username, new.full_name, new.role.value),
    )
    row = await cursor.fetchone()
    if row is None:
        raise Conflict(f"username: a staff member with code {new.username!r} exists; pass staff_id")
    return int(row[0])


async def _check_customer(
    conn: AsyncConnection[Any], tenant_id: int, customer_id: int | None
) -> None:
    cursor = await conn.execute(
        "SELECT 1 FROM customers WHERE id = %s AND tenant_id = %s", (customer_id, tenant_id)
    )
    if await cursor.fetchone() is None:
        raise NotFound(f"customer_id: no customer {customer_id}")


async def get_user(conn: AsyncConnection[Any], tenant_id: int, user_id: int) -> User:
    cursor = await conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users u WHERE u.id = %s AND u.tenant_id = %s",
        (user_id, tenant_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return _user(row)


async def list_users(conn: AsyncConnection[Any], tenant_id: int) -> list[User]:
    cursor = await conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users u WHERE u.tenant_id = %s ORDER BY u.username",
        (tenant_id,),
    )
    return [_user(row) for row in await cursor.fetchall()]


async def login(
    conn: AsyncConnection[Any],
    tenant_slug: str,
    username: str,
    password: str,
    now: dt.datetime,
    policy: LoginPolicy = LoginPolicy(),
    client: str = "",
) -> IssuedToken:
    """A new token for the right password; LoginRefused or LockedOut otherwise.

    Each failure is counted in its own committed transaction, so a lock-out holds across
    processes and restarts; ``max_failed_logins`` failures in a row lock the account for
    ``lockout_s``, during which even the right password is refused.
    """
    cursor = await conn.execute(
        f"SELECT {_USER_COLUMNS}, u.password_hash FROM users u JOIN tenants t"
        " ON t.id = u.tenant_id WHERE t.slug = %s AND u.username = %s",
        (tenant_slug, username),
    )
    row = await cursor.fetchone()
    if row is None:
        await _verify(_DUMMY_HASH, password)
        raise LoginRefused("wrong tenant, username or password")
    user, stored_hash = _user(row), str(row[-1])
    if user.locked_until is not None and user.locked_until > now:
        raise LockedOut(user.locked_until.isoformat())
    if not await _verify(stored_hash, password) or not user.active:
        await _count_failure(conn, user, now, policy)
        raise LoginRefused("wrong tenant, username or password")
    async with conn.transaction():
        await conn.execute(
            "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = %s", (user.id,)
        )
        if _hasher.check_needs_rehash(stored_hash):
            await conn.execute(
                "UPDATE users SET password_hash = %s WHERE id = %s",
                (await hash_password(password), user.id),
            )
        return await issue_token(conn, user, now, policy.token_ttl_s, client)


async def _count_failure(
    conn: AsyncConnection[Any], user: User, now: dt.datetime, policy: LoginPolicy
) -> None:
    # Committed here: the caller raises next, and its rollback must not undo the count.
    await conn.execute(
        # The count starts again once it has locked the account.
        "UPDATE users SET"
        " locked_until = CASE WHEN failed_logins + 1 >= %s THEN %s ELSE locked_until END,"
        " failed_logins = CASE WHEN failed_logins + 1 >= %s THEN 0 ELSE failed_logins + 1 END"
        " WHERE id = %s",
        (
            policy.max_failed_logins,
            now + dt.timedelta(seconds=policy.lockout_s),
            policy.max_failed_logins,
            user.id,
        ),
    )
    await conn.commit()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def issue_token(
    conn: AsyncConnection[Any], user: User, now: dt.datetime, ttl_s: float, client: str = ""
) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    expires_at = now + dt.timedelta(seconds=ttl_s)
    cursor = await conn.execute(
        "INSERT INTO api_tokens (tenant_id, user_id, token_sha256, created_at, expires_at, client)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (user.tenant_id, user.id, _digest(token), now, expires_at, client[:200]),
    )
    row = await cursor.fetchone()
    assert row is not None
    return IssuedToken(token, Session(user, int(row[0]), expires_at))


async def session_for(conn: AsyncConnection[Any], token: str, now: dt.datetime) -> Session | None:
    """The session ``token`` opens: None when unknown, expired, revoked or the user inactive."""
    if not token or len(token) > 512:
        return None
    cursor = await conn.execute(
        f"SELECT {_USER_COLUMNS}, k.id, k.expires_at FROM api_tokens k"
        " JOIN users u ON u.id = k.user_id"
        " WHERE k.token_sha256 = %s AND k.revoked_at IS NULL AND k.expires_at > %s"
        " AND u.active",
        (_digest(token), now),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return Session(_user(row[:-2]), int(row[-2]), row[-1])


async def revoke_token(
    conn: AsyncConnection[Any], tenant_id: int, token_id: int, now: dt.datetime
) -> None:
    await conn.execute(
        "UPDATE api_tokens SET revoked_at = %s"
        " WHERE id = %s AND tenant_id = %s AND revoked_at IS NULL",
        (now, token_id, tenant_id),
    )


async def revoke_user_tokens(
    conn: AsyncConnection[Any], tenant_id: int, user_id: int, now: dt.datetime
) -> int:
    cursor = await conn.execute(
        "UPDATE api_tokens SET revoked_at = %s"
        " WHERE user_id = %s AND tenant_id = %s AND revoked_at IS NULL",
        (now, user_id, tenant_id),
    )
    return cursor.rowcount


async def set_password(
    conn: AsyncConnection[Any], tenant_id: int, user_id: int, password: str, now: dt.datetime
) -> None:
    """A new password; every token of the user is revoked."""
    password_hash = await hash_password(password)
    async with conn.transaction():
        cursor = await conn.execute(
            "UPDATE users SET password_hash = %s, password_set_at = %s, failed_logins = 0,"
            " locked_until = NULL WHERE id = %s AND tenant_id = %s",
            (password_hash, now, user_id, tenant_id),
        )
        if cursor.rowcount == 0:
            raise NotFound(f"user {user_id} not found")
        await revoke_user_tokens(conn, tenant_id, user_id, now)


async def set_active(
    conn: AsyncConnection[Any], tenant_id: int, user_id: int, active: bool, now: dt.datetime
) -> User:
    """Enable or disable a user; disabling revokes every token at once. Enabling also
    lifts a lock-out."""
    async with conn.transaction():
        cursor = await conn.execute(
            "UPDATE users u SET active = %s,"
            " locked_until = CASE WHEN %s THEN NULL ELSE locked_until END,"
            " failed_logins = CASE WHEN %s THEN 0 ELSE failed_logins END"
            f" WHERE u.id = %s AND u.tenant_id = %s RETURNING {_USER_COLUMNS}",
            (active, active, active, user_id, tenant_id),
        )
        row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"user {user_id} not found")
        if not active:
            await revoke_user_tokens(conn, tenant_id, user_id, now)
    return _user(row)
