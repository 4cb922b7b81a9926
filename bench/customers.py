"""How the customer book holds up with a city's worth of customers: search, import,
a month's charges and the customer map, on 1,000,000 service points.

Run from the repository root (it prints figures; it is not a pass/fail test):

    .venv/bin/python -m bench.customers [--points 1000000] [--import-rows 100000]

It creates ``sanitrack_bench_customers_<random>`` on the server of
SANITRACK_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test), migrates
it, and drops it at the end. The book is a synthetic Hà Nội: 200 wards (30 of them rural
communes), Vietnamese names, phones and street addresses, 85 % households billed per
person, 10 % business households and 5 % businesses billed by volume; positions crowd
around the ward centres over 30 x 30 km.

Seeding writes the rows with COPY (the same rows the importer writes; the seeding speed is
not a figure). Then:

* search: 400 queries typed the way the office types them (a name without diacritics, a
  part of a name, a phone's last digits, a code, a street and house number), p50 / p99;
* import: a CSV of ``--import-rows`` rows (new customers and changed ones) through the
  importer into the full book, then the same file again (all unchanged);
* charges: one monthly period for every point;
* the customer map: viewports at zoom 17, 15, 13 and 11 at random places, p50 / p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import hashlib
import os
import random
import resource
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

import audit
import billing
import customers
import fleet
from billing.sample_tariffs import hanoi_tariffs
from customers import importer, spreadsheets
from customers.text import search_text
from simulator import names
from storage import apply_migrations

CENTRE = (21.02, 105.80)
SPAN_DEG = 0.14  # half the city's width: ~15 km
WARDS = 200
RURAL_WARDS = 30
PERIOD = dt.date(2026, 11, 1)
ACTOR = audit.Actor("bench")
CITY_SEED = 2026
FAMILIES = [family for family, _ in names.FAMILY_NAMES]
FAMILY_WEIGHTS = [weight for _, weight in names.FAMILY_NAMES]


def _say(text: str) -> None:
    print(text, flush=True)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _figure(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    _say(
        f"  {name:<34} p50 {statistics.median(ms):7.1f} ms   p99 {percentile(ms, 0.99):7.1f} ms"
        f"   max {max(ms):7.1f} ms   ({len(ms)} queries)"
    )


# ---------------------------------------------------------------- the synthetic city


class City:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.wards = [
            (
                f"{names.WARD_NAMES[n % len(names.WARD_NAMES)]}"
                + (f" {n // len(names.WARD_NAMES) + 1}" if n >= len(names.WARD_NAMES) else ""),
                CENTRE[0] + rng.uniform(-SPAN_DEG, SPAN_DEG),
                CENTRE[1] + rng.uniform(-SPAN_DEG, SPAN_DEG),
            )
            for n in range(WARDS)
        ]
        self.streets = list(names.STREET_NAMES) + list(names.ARTERIAL_NAMES)

    def person(self) -> str:
        """A name drawn as Vietnamese names fall: a third of people are Nguyễn."""
        rng = self.rng
        family = rng.choices(FAMILIES, weights=FAMILY_WEIGHTS)[0]
        middle: tuple[str, ...] = names.MALE_MIDDLE_NAMES
        given: tuple[str, ...] = names.MALE_GIVEN_NAMES
        if rng.random() < 0.5:
            middle, given = names.FEMALE_MIDDLE_NAMES, names.FEMALE_GIVEN_NAMES
        return f"{family} {rng.choice(middle)} {rng.choice(given)}"

    def row(self, n: int) -> dict[str, Any]:
        """Service point number ``n`` as a spreadsheet row (the importer's columns)."""
        rng = self.rng
        ward_no = rng.randrange(WARDS)
        ward, lat, lon = self.wards[ward_no]
        share = rng.random()
        kind = "household" if share < 0.85 else "business_household" if share < 0.95 else "business"
        street = rng.choice(self.streets)
        name = self.person() if kind == "household" else f"Cửa hàng {self.person()}"
        row: dict[str, Any] = {
            "customer_code": f"KH{n:07d}",
            "point_code": f"KH{n:07d}",
            "name": name,
            "kind": kind,
            "phones": f"09{rng.randrange(10**8):08d}",
            "address": f"Số {rng.randrange(1, 400)} {street}, {ward}",
            "street": street,
            "ward": ward,
            "area_code": f"W{ward_no:03d}",
            "lat": round(lat + rng.gauss(0, 0.006), 6),
            "lon": round(lon + rng.gauss(0, 0.006), 6),
            "customer_class": kind if kind != "business" else "restaurant",
            "so_khau": rng.randint(1, 8) if kind == "household" else None,
            "volume_m3_per_month": None if kind == "household" else round(rng.uniform(0.2, 4), 2),
        }
        return row


# ---------------------------------------------------------------- seeding


async def seed(conn: psycopg.AsyncConnection[Any], city: City, points: int) -> int:
    tenant = await fleet.ensure_tenant(conn, "bench-city", "Công ty Môi trường Đô thị")
    at = dt.datetime.now(dt.UTC)
    for n, (ward, _, _) in enumerate(city.wards):
        await customers.create_area(
            conn, tenant.id, ACTOR, at,
            customers.NewArea(code=f"W{n:03d}", name=ward, ward=ward,
                              area_group="rural" if n < RURAL_WARDS else "urban"),
        )  # fmt: skip
    areas = {a.code: a for a in await customers.list_areas(conn, tenant.id)}
    await conn.commit()
    began = time.monotonic()
    chunk = 100_000
    for start in range(0, points, chunk):
        rows = [city.row(n) for n in range(start, min(points, start + chunk))]
        await _copy_rows(conn, tenant.id, rows, areas)
        await conn.commit()
        _say(f"  seeded {start + len(rows):>9,} points  ({time.monotonic() - began:5.0f} s)")
    await conn.execute("ANALYZE")
    await conn.commit()
    began = time.monotonic()
    cells = await customers.rebuild_cells(conn, tenant.id, dt.datetime.now(dt.UTC))
    await conn.commit()
    _say(f"  counted the map's clusters: {cells:,} cells in {time.monotonic() - began:.1f} s")
    return tenant.id


async def _copy_rows(
    conn: psycopg.AsyncConnection[Any],
    tenant_id: int,
    rows: list[dict[str, Any]],
    areas: dict[str, customers.Area],
) -> None:
    async with conn.cursor() as cursor:
        async with cursor.copy(
            "COPY customers (tenant_id, code, name, kind, phones) FROM STDIN"
        ) as copy:
            for r in rows:
                await copy.write_row(
                    (tenant_id, r["customer_code"], r["name"], r["kind"], [r["phones"]])
                )
        await cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS seed_points (code text, address text, street text,"
            " ward text, area_id bigint, lat float8, lon float8, customer_class text,"
            " so_khau int, volume numeric, search_text text, area_group text)"
        )
        await cursor.execute("TRUNCATE seed_points")
        async with cursor.copy("COPY seed_points FROM STDIN") as copy:
            for r in rows:
                area = areas[r["area_code"]]
                await copy.write_row(
                    (
                        r["point_code"], r["address"], r["street"], r["ward"], area.id,
                        r["lat"], r["lon"], r["customer_class"], r["so_khau"],
                        r["volume_m3_per_month"],
                        search_text(
                            customer_code=r["customer_code"], point_code=r["point_code"],
                            name=r["name"], phones=[r["phones"]], address=r["address"],
                            street=r["street"], ward=r["ward"],
                        ),
                        area.area_group,
                    )
                )  # fmt: skip
        await cursor.execute(
            "INSERT INTO service_points (tenant_id, customer_id, code, address, street, ward,"
            " area_id, lat, lon, position_source, customer_class, so_khau,"
            " volume_m3_per_month, waste_kg_per_day, search_text)"
            " SELECT %s, c.id, s.code, s.address, s.street, s.ward, s.area_id, s.lat, s.lon,"
            " 'import', s.customer_class, s.so_khau, s.volume, 0, s.search_text"
            " FROM seed_points s JOIN customers c ON c.tenant_id = %s AND c.code = s.code",
            (tenant_id, tenant_id),
        )
        await cursor.execute(
            "INSERT INTO service_point_terms (tenant_id, service_point_id, valid_from, status,"
            " customer_class, area_group, so_khau, volume_m3_per_month, services)"
            " SELECT %s, p.id, DATE '2026-01-01', 'active', s.customer_class, s.area_group,"
            " s.so_khau, s.volume, '{collection}' FROM seed_points s"
            " JOIN service_points p ON p.tenant_id = %s AND p.code = s.code",
            (tenant_id, tenant_id),
        )


# ---------------------------------------------------------------- measuring


def search_queries(points: int, count: int) -> list[tuple[str, str]]:
    """Queries for rows of the book: the same seed draws the same rows again."""
    rng = random.Random(7)
    queries: list[tuple[str, str]] = []
    replay = City(CITY_SEED)
    sample = [replay.row(n) for n in range(min(points, 20_000))]
    for _ in range(count):
        r = rng.choice(sample)
        kind = rng.randrange(5)
        if kind == 0:
            queries.append(("full name, no diacritics", customers.fold(r["name"])))
        elif kind == 1:
            queries.append(("given name + street", f"{r['name'].split()[-1]} {r['street']}"))
        elif kind == 2:
            queries.append(("last 6 digits of a phone", r["phones"][-6:]))
        elif kind == 3:
            queries.append(("customer code", r["customer_code"]))
        else:
            number = r["address"].split()[1]
            queries.append(("house number + street", f"{number} {customers.fold(r['street'])}"))
    return queries


async def measure_search(conn: psycopg.AsyncConnection[Any], tenant_id: int, points: int) -> None:
    _say("search (50 results a page, code order)")
    by_kind: dict[str, list[float]] = {}
    everything: list[float] = []
    for kind, query in search_queries(points, 400):
        began = time.perf_counter()
        await customers.search_points(conn, tenant_id, query)
        took = time.perf_counter() - began
        by_kind.setdefault(kind, []).append(took)
        everything.append(took)
    for kind, times in by_kind.items():
        _figure(kind, times)
    _figure("all searches", everything)


async def measure_map(conn: psycopg.AsyncConnection[Any], tenant_id: int) -> None:
    _say("customer map (points when <= 2,000 in view, else clusters)")
    rng = random.Random(3)
    for zoom, width_px, height_px in ((17, 1500, 900), (15, 1500, 900), (13, 1500, 900),
                                      (11, 1500, 900)):  # fmt: skip
        seconds = []
        shown = []
        deg_per_px = 360 / (256 * 2**zoom)
        for _ in range(60):
            lat = CENTRE[0] + rng.uniform(-SPAN_DEG, SPAN_DEG) * 0.8
            lon = CENTRE[1] + rng.uniform(-SPAN_DEG, SPAN_DEG) * 0.8
            half_w, half_h = width_px / 2 * deg_per_px, height_px / 2 * deg_per_px
            viewport = customers.Viewport(
                south=lat - half_h, west=lon - half_w, north=lat + half_h, east=lon + half_w,
                zoom=zoom,
            )  # fmt: skip
            began = time.perf_counter()
            view = await customers.map_view(conn, tenant_id, viewport)
            seconds.append(time.perf_counter() - began)
            shown.append(
                f"{len(view['points'])} points" if view["points"] else
                f"{len(view['clusters'])} clusters of {sum(c['count'] for c in view['clusters'])}"
            )  # fmt: skip
        _figure(f"zoom {zoom} ({width_px}x{height_px} px)", seconds)
        _say(f"    e.g. {shown[0]}; {shown[len(shown) // 2]}")


async def measure_import(
    conn: psycopg.AsyncConnection[Any], tenant_id: int, points: int, rows: int
) -> None:
    _say(f"import of {rows:,} rows into the book of {points:,} points")
    changed = rows // 10
    city = City(CITY_SEED + 1)
    sample = [city.row(n) for n in range(points, points + rows - changed)]  # new customers
    replay = City(CITY_SEED)
    old = [replay.row(n) for n in range(changed)]
    for r in old:
        r["phones"] = f"08{random.randrange(10**8):08d}"  # a changed phone: an update
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "book.csv"
        _write_csv(path, sample + old)
        for attempt in ("first", "again"):
            began = time.monotonic()
            report = await _import(conn, tenant_id, path)
            took = time.monotonic() - began
            _say(
                f"  {attempt:<6} {took:6.1f} s  ({rows / took:,.0f} rows/s):"
                f" created {report.rows_created:,}, updated {report.rows_updated:,},"
                f" unchanged {report.rows_unchanged:,}, rejected {report.rows_rejected:,}"
            )
            for rejection in report.rejections[:3]:
                _say(f"    e.g. row {rejection.row_number}: {rejection.field}: {rejection.reason}")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        columns = list(rows[0])
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r[c] is None else r[c] for c in columns])


async def _import(conn: psycopg.AsyncConnection[Any], tenant_id: int, path: Path) -> Any:
    data = await asyncio.to_thread(path.read_bytes)
    sheet = spreadsheets.read_sheet(data)
    now = dt.datetime.now(dt.UTC)
    report = await importer.import_rows(
        conn, tenant_id, ACTOR, sheet, filename=path.name,
        file_sha256=hashlib.sha256(data).hexdigest(), fmt=sheet.format, now=now,
        effective_date=now.date(), progress=_progress("rows"),
    )  # fmt: skip
    await conn.commit()
    return report


def _progress(what: str) -> Callable[[int, int], None]:
    """A progress callback printing a line at every further 20 %."""
    shown = [-1]

    def progress(done: int, total: int) -> None:
        step = done * 5 // max(total, 1)
        if step > shown[0]:
            shown[0] = step
            _say(f"    {done:>9,} / {total:,} {what}")

    return progress


async def measure_charges(conn: psycopg.AsyncConnection[Any], tenant_id: int) -> None:
    _say(f"charges for one monthly period ({PERIOD:%m/%Y}) of every service point")
    at = dt.datetime.now(dt.UTC)
    for version in hanoi_tariffs(dt.date(2025, 1, 1)):
        await billing.create_tariff_version(conn, tenant_id, ACTOR, at, version)
    await conn.commit()
    for attempt in ("first", "again"):
        began = time.monotonic()
        run = await billing.compute_charges(
            conn, tenant_id, PERIOD, customers.BillingPeriod.MONTHLY, now=at,
            progress=_progress("points"),
        )  # fmt: skip
        await conn.commit()
        took = time.monotonic() - began
        _say(
            f"  {attempt:<6} {took:6.1f} s  ({run.points / took:,.0f} points/s): {run.points:,}"
            f" points, {run.rows_written:,} rows written, {run.rows_unchanged:,} unchanged,"
            f" {run.problems_count:,} problems, total {run.total_vnd:,} VND"
        )


# ---------------------------------------------------------------- running


@contextlib.asynccontextmanager
async def bench_database(server_url: str, keep: bool) -> AsyncIterator[str]:
    name = f"sanitrack_bench_customers_{secrets.token_hex(4)}"
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    try:
        await apply_migrations(url)
        yield url
    finally:
        if keep:
            _say(f"kept database {name}")
        else:
            async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
                await conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            _say(f"dropped database {name}")


async def run(args: argparse.Namespace) -> None:
    async with (
        bench_database(args.server_url, args.keep) as url,
        await psycopg.AsyncConnection.connect(url) as conn,
    ):
        _say(f"seeding {args.points:,} service points")
        tenant_id = await seed(conn, City(CITY_SEED), args.points)
        await measure_search(conn, tenant_id, args.points)
        await conn.rollback()
        await measure_map(conn, tenant_id)
        await conn.rollback()
        if "import" in args.parts:
            await measure_import(conn, tenant_id, args.points, args.import_rows)
        if "charges" in args.parts:
            await measure_charges(conn, tenant_id)
        _say(f"peak memory of this process: {_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--parts", nargs="*", default=["import", "charges"])
    parser.add_argument("--keep", action="store_true", help="keep the database (to explain)")
    parser.add_argument(
        "--server-url",
        default=os.environ.get(
            "SANITRACK_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
