"""Users, passwords and tokens against real PostgreSQL; the login throttle on a manual clock."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

import accounts
import fleet
from accounts import Role
from sanitrack.clock import ManualClock
from storage import Pool

NOW = dt.datetime(2026, 12, 4, 1, 0, tzinfo=dt.UTC)


async def _tenant(pool: Pool) -> int:
    async with pool.connection() as conn:
        return (await fleet.ensure_tenant(conn, "urenco-test", "URENCO")).id


async def test_passwords_are_argon2id_hashes_and_tokens_are_stored_as_digests(pool: Pool) -> None:
    tenant_id = await _tenant(pool)
    async with pool.connection() as conn:
        user = await accounts.create_user(
            conn,
            tenant_id,
            accounts.NewUser("dieuphoi", "Điều phối", Role.DISPATCHER, "một mật khẩu dài"),
        )
        issued = await accounts.login(conn, "urenco-test", "dieuphoi", "một mật khẩu dài", NOW)
        stored = await (await conn.execute("SELECT password_hash FROM users")).fetchone()
        digests = await (await conn.execute("SELECT token_sha256 FROM api_tokens")).fetchall()
    assert stored is not None
    assert stored[0].startswith("$argon2id$")
    assert "một mật khẩu dài" not in stored[0]
    assert issued.session.user.id == user.id
    assert issued.session.expires_at == NOW + dt.timedelta(hours=12)
    assert len(digests) == 1
    assert issued.token.encode() not in bytes(digests[0][0])
    assert user.staff_id is not None  # a staff role gets its staff member


async def test_a_session_ends_at_expiry_revocation_or_when_the_user_is_disabled(
    pool: Pool,
) -> None:
    tenant_id = await _tenant(pool)
    async with pool.connection() as conn:
        user = await accounts.create_user(
            conn, tenant_id, accounts.NewUser("ketoan", "Kế toán", Role.ACCOUNTANT, "p" * 12)
        )
        first = await accounts.issue_token(conn, user, NOW, 600)
        second = await accounts.issue_token(conn, user, NOW, 600)
        assert await accounts.session_for(conn, first.token, NOW + dt.timedelta(seconds=599))
        assert (
            await accounts.session_for(conn, first.token, NOW + dt.timedelta(seconds=600)) is None
        )
        await accounts.revoke_token(conn, tenant_id, second.session.token_id, NOW)
        assert await accounts.session_for(conn, second.token, NOW) is None
        third = await accounts.issue_token(conn, user, NOW, 600)
        await accounts.set_active(conn, tenant_id, user.id, False, NOW)
        assert await accounts.session_for(conn, third.token, NOW) is None
        await accounts.set_active(conn, tenant_id, user.id, True, NOW)
        assert await accounts.session_for(conn, third.token, NOW) is None  # revoked for good
        assert await accounts.session_for(conn, "", NOW) is None
        assert await accounts.session_for(conn, "x" * 10_000, NOW) is None


async def test_lock_out_counts_across_connections_and_a_good_login_resets_the_count(
    pool: Pool,
) -> None:
    tenant_id = await _tenant(pool)
    policy = accounts.LoginPolicy(max_failed_logins=3, lockout_s=60)
    async with pool.connection() as conn:
        await accounts.create_user(
            conn, tenant_id, accounts.NewUser("thungan", "Thu ngân", Role.CASHIER, "p" * 12)
        )
    for attempt in range(2):
        async with pool.connection() as conn:
            with pytest.raises(accounts.LoginRefused):
                await accounts.login(
                    conn, "urenco-test", "thungan", f"wrong {attempt}", NOW, policy
                )
    async with pool.connection() as conn:
        await accounts.login(conn, "urenco-test", "thungan", "p" * 12, NOW, policy)
    for attempt in range(3):  # the count started again after the good login
        async with pool.connection() as conn:
            with pytest.raises(accounts.LoginRefused):
                await accounts.login(
                    conn, "urenco-test", "thungan", f"wrong {attempt}", NOW, policy
                )
    async with pool.connection() as conn:
        with pytest.raises(accounts.LockedOut):
            await accounts.login(conn, "urenco-test", "thungan", "p" * 12, NOW, policy)
        later = NOW + dt.timedelta(seconds=61)
        await accounts.login(conn, "urenco-test", "thungan", "p" * 12, later, policy)


async def test_a_customer_user_needs_a_customer_of_the_same_tenant(pool: Pool) -> None:
    tenant_id = await _tenant(pool)
    async with pool.connection() as conn:
        with pytest.raises(accounts.InvalidValue, match="customer_id"):
            await accounts.create_user(
                conn, tenant_id, accounts.NewUser("kh1", "Khách", Role.CUSTOMER, "p" * 12)
            )
        with pytest.raises(accounts.NotFound, match="customer_id"):
            await accounts.create_user(
                conn,
                tenant_id,
                accounts.NewUser("kh1", "Khách", Role.CUSTOMER, "p" * 12, customer_id=999),
            )


def test_the_throttle_allows_a_burst_then_a_steady_rate_per_client() -> None:
    clock = ManualClock(NOW)
    throttle = accounts.LoginThrottle(clock, per_minute=6, burst=3)
    assert [throttle.retry_after_s("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.retry_after_s("10.0.0.1") == pytest.approx(10.0)
    assert throttle.retry_after_s("10.0.0.2") == 0.0  # another address has its own bucket
    clock.advance(10)
    assert throttle.retry_after_s("10.0.0.1") == 0.0
    assert throttle.retry_after_s("10.0.0.1") > 0


@given(st.text(max_size=300))
def test_any_password_is_either_refused_by_length_or_accepted(password: str) -> None:
    if accounts.service.MIN_PASSWORD_CHARS <= len(password) <= accounts.service.MAX_PASSWORD_CHARS:
        accounts.check_password(password)
    else:
        with pytest.raises(accounts.InvalidValue, match="password"):
            accounts.check_password(password)


async def user_add(database_url: str, username: str, full_name: str) -> tuple[int, str, str]:
    """Run `sanitrack user-add` for an admin; (exit code, stdout, stderr)."""
    import asyncio
    import os
    import sys

    env = {**os.environ, "SANITRACK_DATABASE_URL": database_url, "SANITRACK_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sanitrack.cli",
        "user-add",
        "--tenant",
        "urenco-test",
        "--username",
        username,
        "--full-name",
        full_name,
        "--role",
        "admin",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_user_add_command_creates_a_user_who_can_log_in(
    pool: Pool, database_url: str
) -> None:
    await _tenant(pool)
    code, out, err = await user_add(database_url, "quantri", "Quản trị viên")
    assert code == 0, err
    password = out.strip().rsplit(" ", 1)[-1]
    async with pool.connection() as conn:
        issued = await accounts.login(conn, "urenco-test", "quantri", password, NOW)
    assert issued.session.user.role is Role.ADMIN
    code, _, err = await user_add(database_url, "quantri", "X")
    assert code == 1
    assert "exists already" in err
