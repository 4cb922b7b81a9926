from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

import alerts
from alerts import Change
from storage import MigrationError, apply_migrations, open_pool
from storage.migrations import MIGRATIONS_DIR, load_migrations
from tests.alerts.world import T0, make_world
from tests.conftest import DatabaseFactory


async def test_two_processes_starting_at_once_apply_each_migration_once(
    databases: DatabaseFactory,
) -> None:
    url = databases.create()
    first, second = await asyncio.gather(apply_migrations(url), apply_migrations(url))
    expected = [m.version for m in load_migrations()]
    assert sorted(first + second) == expected  # each applied exactly once
    assert await apply_migrations(url) == []
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == expected


async def test_a_changed_applied_migration_stops_start_up(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    url = databases.create()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    await apply_migrations(url, tmp_path)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited later\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply_migrations(url, tmp_path)


async def test_a_failing_migration_leaves_nothing_half_done(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    url = databases.create()
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE b (x int); SELECT no_such_function();")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        await apply_migrations(url, tmp_path)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('a') IS NOT NULL, to_regclass('b')").fetchone() == (
            True,
            None,
        )
        assert conn.execute("SELECT array_agg(version) FROM schema_migrations").fetchone() == ([1],)


def test_misnamed_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)


async def test_alerts_stuck_open_on_runs_cancelled_before_0018_close_with_it(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    url = databases.create()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if path.name < "0018":
            (tmp_path / path.name).write_text(path.read_text())
    await apply_migrations(url, tmp_path)
    async with open_pool(url, min_size=1, max_size=2) as pool:
        world = await make_world(pool)
        async with pool.connection() as conn:
            [stuck] = await alerts.apply_signals(conn, [world.signal(Change.OPENED, "m:2", T0)])
            # what cancelling did before 0018
            await conn.execute(
                "UPDATE route_runs SET status = 'cancelled' WHERE id = %s", (world.run_id,)
            )
        assert await apply_migrations(url) == [18]
        async with pool.connection() as conn:
            closed = await alerts.get_alert(conn, world.tenant_id, stuck.alert.id)
    assert closed.resolution is alerts.Resolution.RUN_CANCELLED
    assert closed.resolve_note == alerts.RUN_CANCELLED_NOTE
