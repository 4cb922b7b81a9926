"""Downsampled tracks: one point per device per bucket, the bucket's last fix with its top
speed, inside the range asked for and inside the tenant."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import orjson
import pytest

from storage import (
    Pool,
    PositionsBackend,
    TrackPoint,
    detect_backend,
    downsampled_track,
    downsampled_track_json,
    track_fixes,
    write_positions,
)
from tests.support import make_devices

# A bucket boundary (date_bin and time_bucket both count from 2000-01-01), two days back:
# inside the positions partitions the session created.
T0 = dt.datetime.combine(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2), dt.time(3), dt.UTC)
INTERVAL_S = 5
FIXES = 120  # ten minutes per device


@dataclass(frozen=True)
class Fleet:
    tenant_id: int
    device_ids: tuple[int, int]
    other_tenant_id: int
    other_device_id: int


def speed_kmh(device_id: int, n: int) -> float:
    """Speeds that rise and fall, so a bucket's top speed is seldom its last fix's."""
    return float((n * 7 + device_id * 3) % 41)


def fix_row(tenant_id: int, device_id: int, n: int) -> tuple[object, ...]:
    at = T0 + dt.timedelta(seconds=n * INTERVAL_S)
    lat, lon = 20.97 + n * 1e-5, 105.78 + device_id * 1e-3
    speed = speed_kmh(device_id, n)
    ignition, odometer_m = n % 2 == 0, 1000 + n * 10
    return (
        device_id,
        at,
        tenant_id,
        at,
        lat,
        lon,
        speed,
        90.0,
        5.0,
        None,
        9,
        n,
        ignition,
        None,
        odometer_m,
        "native",
    )


@pytest.fixture
async def fleet(pool: Pool) -> Fleet:
    ours = await make_devices(pool, 2)
    [theirs] = await make_devices(pool, 1)
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT id FROM tenants ORDER BY id")
        tenant_id, other_tenant_id = [row[0] for row in await cursor.fetchall()]
        rows = [fix_row(tenant_id, d.device_id, n) for d in ours for n in range(FIXES)]
        rows += [fix_row(other_tenant_id, theirs.device_id, n) for n in range(FIXES)]
        await write_positions(conn, rows)
        await conn.commit()
    return Fleet(
        tenant_id, (ours[0].device_id, ours[1].device_id), other_tenant_id, theirs.device_id
    )


def expected_point(device_id: int, last_n: int, bucket_fixes: range) -> TrackPoint:
    """The point of a bucket whose last fix is ``last_n`` (the values are exact in real)."""
    _, at, _, _, lat, lon, speed, heading, *_ = fix_row(0, device_id, last_n)
    assert isinstance(at, dt.datetime)
    assert isinstance(lat, float)
    assert isinstance(lon, float)
    assert isinstance(speed, float)
    assert isinstance(heading, float)
    top_speed_kmh = max(speed_kmh(device_id, n) for n in bucket_fixes)
    return TrackPoint(device_id, at, lat, lon, speed, heading, top_speed_kmh)


async def test_each_bucket_gives_its_last_fix_with_its_top_speed(pool: Pool, fleet: Fleet) -> None:
    async with pool.connection() as conn:
        backend = await detect_backend(conn)
        points = await downsampled_track(
            conn,
            fleet.tenant_id,
            fleet.device_ids,
            T0,
            T0 + dt.timedelta(hours=1),
            30,
            backend,
        )
    per_bucket = 30 // INTERVAL_S
    expected = [
        expected_point(
            device_id,
            bucket * per_bucket + per_bucket - 1,
            range(bucket * per_bucket, (bucket + 1) * per_bucket),
        )
        for bucket in range(FIXES // per_bucket)
        for device_id in sorted(fleet.device_ids)
    ]
    assert points == expected
    assert all(point.time.tzinfo is dt.UTC for point in points)


async def test_the_range_cuts_the_buckets_at_its_ends(pool: Pool, fleet: Fleet) -> None:
    device_id = fleet.device_ids[0]
    async with pool.connection() as conn:
        points = await downsampled_track(
            conn,
            fleet.tenant_id,
            [device_id],
            T0 + dt.timedelta(seconds=7),  # fixes 2 .. 18 (at 10 s .. 90 s)
            T0 + dt.timedelta(seconds=95),
            30,
            PositionsBackend.NATIVE,
        )
    assert points == [
        expected_point(device_id, 5, range(2, 6)),
        expected_point(device_id, 11, range(6, 12)),
        expected_point(device_id, 17, range(12, 18)),
        expected_point(device_id, 18, range(18, 19)),
    ]


@pytest.mark.parametrize("bucket_s", [0, 1])
async def test_no_bucket_gives_the_raw_fixes(pool: Pool, fleet: Fleet, bucket_s: int) -> None:
    device_id = fleet.device_ids[1]
    async with pool.connection() as conn:
        points = await downsampled_track(
            conn,
            fleet.tenant_id,
            [device_id],
            T0,
            T0 + dt.timedelta(seconds=50),
            bucket_s,
            PositionsBackend.NATIVE,
        )
    assert points == [expected_point(device_id, n, range(n, n + 1)) for n in range(10)]


async def test_the_points_are_capped_earliest_first(pool: Pool, fleet: Fleet) -> None:
    async with pool.connection() as conn:
        points = await downsampled_track(
            conn,
            fleet.tenant_id,
            fleet.device_ids,
            T0,
            T0 + dt.timedelta(hours=1),
            60,
            PositionsBackend.NATIVE,
            max_points=5,
        )
    assert [point.time for point in points] == [
        T0 + dt.timedelta(seconds=55),
        T0 + dt.timedelta(seconds=55),
        T0 + dt.timedelta(seconds=115),
        T0 + dt.timedelta(seconds=115),
        T0 + dt.timedelta(seconds=175),
    ]


async def test_another_tenant_s_devices_give_nothing(pool: Pool, fleet: Fleet) -> None:
    day = (T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=1))
    async with pool.connection() as conn:
        for tenant_id, device_ids in (
            (fleet.tenant_id, [fleet.other_device_id]),
            (fleet.other_tenant_id, list(fleet.device_ids)),
        ):
            for bucket_s in (0, 30):
                assert (
                    await downsampled_track(
                        conn, tenant_id, device_ids, *day, bucket_s, PositionsBackend.NATIVE
                    )
                    == []
                )
            assert await track_fixes(conn, tenant_id, device_ids, *day) == []


async def test_the_timescaledb_branch_cuts_the_same_buckets(pool: Pool, fleet: Fleet) -> None:
    """TimescaleDB cannot be installed here: a stand-in ``time_bucket`` with its documented
    (bucket_width, ts, origin) signature proves the branch's SQL runs and agrees."""
    day = (T0, T0 + dt.timedelta(hours=1))
    async with pool.connection() as conn:
        native = await downsampled_track(
            conn, fleet.tenant_id, fleet.device_ids, *day, 45, PositionsBackend.NATIVE
        )
        await conn.execute(
            "CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz,"
            " origin timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS"
            " $$ SELECT date_bin(bucket_width, ts, origin) $$"
        )
        timescale = await downsampled_track(
            conn, fleet.tenant_id, fleet.device_ids, *day, 45, PositionsBackend.TIMESCALEDB
        )
        await conn.rollback()  # the stand-in goes
    assert timescale == native
    assert len(native) == 2 * 14  # 45 s buckets from 03:00:00 over ten minutes: 13 and a part


async def test_track_fixes_reads_every_fix_in_time_order(pool: Pool, fleet: Fleet) -> None:
    async with pool.connection() as conn:
        fixes = await track_fixes(
            conn, fleet.tenant_id, fleet.device_ids, T0, T0 + dt.timedelta(seconds=10)
        )
    assert [(fix.time, fix.device_id) for fix in fixes] == [
        (T0 + dt.timedelta(seconds=s), device_id)
        for s in (0, 5)
        for device_id in sorted(fleet.device_ids)
    ]
    assert (fixes[0].ignition, fixes[2].ignition, fixes[2].odometer_m) == (True, False, 1010)


async def test_bad_arguments_are_refused(pool: Pool) -> None:
    async with pool.connection() as conn:
        with pytest.raises(ValueError, match="bucket_s"):
            await downsampled_track(conn, 1, [1], T0, T0, -5, PositionsBackend.NATIVE)
        with pytest.raises(ValueError, match="max_points"):
            await downsampled_track(conn, 1, [1], T0, T0, 30, PositionsBackend.NATIVE, max_points=0)
        with pytest.raises(ValueError, match="start"):
            await track_fixes(conn, 1, [1], T0.replace(tzinfo=None), T0)


@pytest.mark.parametrize("bucket_s", [0, 30])
async def test_the_json_track_holds_the_same_points_as_the_rows(
    pool: Pool, fleet: Fleet, bucket_s: int
) -> None:
    """downsampled_track_json is what the API answers: the same points, written by SQL."""
    end = T0 + dt.timedelta(seconds=FIXES * INTERVAL_S)
    ids = [*fleet.device_ids, fleet.other_device_id]
    async with pool.connection() as conn:
        rows = await downsampled_track(
            conn, fleet.tenant_id, ids, T0, end, bucket_s, PositionsBackend.NATIVE
        )
        text = await downsampled_track_json(
            conn, fleet.tenant_id, ids, T0, end, bucket_s, PositionsBackend.NATIVE
        )
        empty = await downsampled_track_json(
            conn, fleet.tenant_id, [], T0, end, bucket_s, PositionsBackend.NATIVE
        )
    points = orjson.loads(text)
    assert len(points) == len(rows) > 0
    assert [(p["lat"], p["lon"], p["max_speed_kmh"]) for p in points] == [
        (r.lat, r.lon, r.max_speed_kmh) for r in rows
    ]
    assert [dt.datetime.fromisoformat(p["time"]) for p in points] == [r.time for r in rows]
    assert all(p["time"].endswith("Z") for p in points)
    assert empty == b"[]"
