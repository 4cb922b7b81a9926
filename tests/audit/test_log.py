"""The audit log: append in order, read a customer's history, and notice tampering."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import audit
import fleet
from audit.log import jsonable
from storage import Pool

AT = dt.datetime(2026, 12, 5, 8, 0, tzinfo=dt.UTC)
CLERK = audit.Actor("thu.nguyen", None)


async def _tenant(pool: Pool, slug: str) -> int:
    async with pool.connection() as conn:
        return (await fleet.ensure_tenant(conn, slug, slug)).id


def _change(n: int, customer_id: int | None = 7) -> audit.Change:
    return audit.Change(
        "customer", n, "update", {"so_khau": n, "name": "Nguyễn Văn Á"}, {"so_khau": n + 1},
        customer_id,
    )  # fmt: skip


async def test_entries_chain_in_order_and_history_reads_one_customer(pool: Pool) -> None:
    tenant = await _tenant(pool, "audit-a")
    async with pool.connection() as conn:
        seqs = await audit.record_many(conn, tenant, CLERK, AT, [_change(n) for n in range(3)])
        await audit.record(conn, tenant, CLERK, AT, _change(9, customer_id=8))
    assert seqs == [1, 2, 3]
    async with pool.connection() as conn:
        entries = await audit.history(conn, tenant, customer_id=7)
        assert [e.seq for e in entries] == [3, 2, 1]
        assert entries[0].before == {"so_khau": 2, "name": "Nguyễn Văn Á"}
        assert entries[0].actor == "thu.nguyen"
        assert await audit.verify_chain(conn, tenant) == []


async def test_the_log_refuses_update_and_delete(pool: Pool) -> None:
    tenant = await _tenant(pool, "audit-b")
    async with pool.connection() as conn:
        await audit.record(conn, tenant, CLERK, AT, _change(1))
    async with pool.connection() as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("UPDATE audit_log SET actor = 'someone else'")
        await conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("DELETE FROM audit_log")


async def _bypassing_triggers(pool: Pool, sql: str) -> None:
    """What a superuser can do around the triggers: the chain must show it."""
    async with pool.connection() as conn:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(sql)
        await conn.execute("SET session_replication_role = DEFAULT")


async def test_the_chain_shows_an_edited_entry(pool: Pool) -> None:
    tenant = await _tenant(pool, "audit-c")
    async with pool.connection() as conn:
        await audit.record_many(conn, tenant, CLERK, AT, [_change(n) for n in range(5)])
    await _bypassing_triggers(
        pool,
        f"UPDATE audit_log SET after = '{{\"so_khau\": 1}}' WHERE seq = 3 AND tenant_id = {tenant}",
    )
    async with pool.connection() as conn:
        breaks = await audit.verify_chain(conn, tenant)
    assert [(b.seq, b.reason) for b in breaks] == [
        (3, "its content was changed after it was written")
    ]


async def test_the_chain_shows_a_deleted_entry_and_a_cut_tail(pool: Pool) -> None:
    tenant = await _tenant(pool, "audit-d")
    async with pool.connection() as conn:
        await audit.record_many(conn, tenant, CLERK, AT, [_change(n) for n in range(6)])
    await _bypassing_triggers(
        pool, f"DELETE FROM audit_log WHERE tenant_id = {tenant} AND seq IN (2, 6)"
    )
    async with pool.connection() as conn:
        breaks = await audit.verify_chain(conn, tenant)
    reasons = {(b.seq, b.reason) for b in breaks}
    assert (2, "entries 2..2 are missing") in reasons
    assert (3, "does not follow the entry before it") in reasons
    assert (6, "the chain's last entries are missing") in reasons


async def test_concurrent_writers_chain_without_gaps(pool: Pool) -> None:
    tenant = await _tenant(pool, "audit-e")

    async def writer(n: int) -> None:
        async with pool.connection() as conn:
            await audit.record(conn, tenant, CLERK, AT, _change(n))

    await asyncio.gather(*(writer(n) for n in range(12)))
    async with pool.connection() as conn:
        entries = await audit.history(conn, tenant, limit=100)
        assert sorted(e.seq for e in entries) == list(range(1, 13))
        assert await audit.verify_chain(conn, tenant) == []


async def test_another_tenants_history_is_not_shown(pool: Pool) -> None:
    mine, theirs = await _tenant(pool, "audit-f"), await _tenant(pool, "audit-g")
    async with pool.connection() as conn:
        await audit.record(conn, theirs, CLERK, AT, _change(1))
        assert await audit.history(conn, mine, customer_id=7) == []
        # Each tenant's chain starts at 1 on its own.
        assert await audit.record(conn, mine, CLERK, AT, _change(1)) == 1


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**62), max_value=2**62)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.dates()
    | st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8).filter(lambda k: "\x00" not in k), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(before={"": -0.0, "big": 1e20, "tiny": 1e-7})
@given(
    before=st.dictionaries(
        st.text(max_size=10).filter(lambda k: "\x00" not in k), json_values, max_size=5
    )
)
async def test_any_recorded_values_verify_after_the_round_trip(
    pool: Pool, before: dict[str, object]
) -> None:
    """Whatever values go in (floats, decimals, dates, Vietnamese text), jsonb gives them
    back in a form that hashes the same: no false alarms."""
    async with pool.connection() as conn:
        tenant = (await fleet.ensure_tenant(conn, "audit-h", "audit-h")).id
        await audit.record(
            conn, tenant, CLERK, AT, audit.Change("customer", 1, "update", before, None, 1)
        )
        assert await audit.verify_chain(conn, tenant) == []


def test_jsonable_names_what_it_cannot_record() -> None:
    assert jsonable({"d": decimal.Decimal("1.50"), "t": AT}) == {
        "d": "1.50",
        "t": "2026-12-05T08:00:00+00:00",
    }
    with pytest.raises(audit.AuditError, match="cannot record a object value"):
        jsonable(object())
