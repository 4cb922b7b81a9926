"""The `sanitrack` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

import accounts
import fleet
import simulator
from broker import ServiceAccount, acl_file, password_file
from sanitrack import logs, simulate
from sanitrack.app import (
    SERVICE_USERNAME,
    alerts_runtime,
    database,
    ingest_with_rules,
    mqtt_endpoint,
    run_api,
    run_ingest,
    serve_http,
)
from sanitrack.cli_billing import add_billing_commands, guard
from sanitrack.cli_planning import add_planning_commands
from sanitrack.settings import Settings, SettingsError, load_settings
from storage import (
    StorageError,
    apply_migrations,
    count_dead_letters,
    count_positions,
    embedded_postgres,
)

if TYPE_CHECKING:
    from customers.importer import Rejection

log = logging.getLogger("sanitrack")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"sanitrack: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_json)
    handler = args.handler
    try:
        return _run(handler(settings, args))
    except (fleet.FleetError, accounts.AccountsError, StorageError) as exc:
        print(f"sanitrack: {exc}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as exc:
        print(f"sanitrack: cannot reach the database: {exc}".strip(), file=sys.stderr)
        return 1


def _run(coro: Coroutine[Any, Any, int]) -> int:
    """Run until done, SIGINT or SIGTERM; a signal cancels the work for a clean stop."""

    async def wrapper() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await coro
        except asyncio.CancelledError:
            print("\nsanitrack: stopped", file=sys.stderr)
            return 0

    return asyncio.run(wrapper())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanitrack", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the whole system on embedded defaults")
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    demo.add_argument("--vehicles", type=int, default=None, help="trucks in the demo")
    demo.add_argument("--phones", type=int, default=None, help="staff phones in the demo")
    demo.set_defaults(handler=_demo)

    simulate_parser = commands.add_parser(
        "simulate", help="play a simulated city of trucks and phones into the broker"
    )
    simulate.add_arguments(simulate_parser)
    simulate_parser.set_defaults(handler=simulate.simulate)

    ingest = commands.add_parser(
        "ingest", help="run the ingest service, the rules engine, the API and the live map"
    )
    ingest.set_defaults(handler=_ingest)

    api = commands.add_parser(
        "api",
        help="run the API and the live map in a process of their own (the ingest must run"
        " with SANITRACK_API__NOTIFY_POSITIONS=true)",
    )
    api.set_defaults(handler=_api)

    user = commands.add_parser(
        "user-add", help="create a user (the first admin, say); prints a password once"
    )
    user.add_argument("--tenant", required=True, help="the company's slug")
    user.add_argument("--username", required=True)
    user.add_argument("--full-name", required=True)
    user.add_argument("--role", choices=[r.value for r in accounts.Role], required=True)
    user.set_defaults(handler=_user_add)

    worker = commands.add_parser(
        "worker",
        help="run the office's background jobs: change requests coming due, the customer"
        " map's clusters, customers' notices",
    )
    worker.set_defaults(handler=_worker)

    migrate = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(handler=_migrate)

    device = commands.add_parser("device-add", help="register a device; prints its secret once")
    device.add_argument("--tenant", required=True)
    device.add_argument("--device", required=True)
    device.add_argument("--kind", choices=[k.value for k in fleet.DeviceKind], required=True)
    device.set_defaults(handler=_device_add)

    export = commands.add_parser(
        "broker-export", help="write a Mosquitto password file and ACL from the devices table"
    )
    export.add_argument("--password-file", type=Path, required=True)
    export.add_argument("--acl-file", type=Path, required=True)
    export.set_defaults(handler=_broker_export)

    book_import = commands.add_parser(
        "customers-import", help="import a customer spreadsheet (CSV or XLSX) into a company"
    )
    book_import.add_argument("file", type=Path, help="the .csv or .xlsx file")
    book_import.add_argument("--tenant", required=True, help="the company's slug")
    book_import.add_argument(
        "--effective-date",
        type=dt.date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="billing changes (số khẩu, volume, status...) apply from this day (default: today)",
    )
    book_import.add_argument(
        "--actor", default=None, help="who imports, for the audit log (default: the login name)"
    )
    book_import.add_argument(
        "--report", type=Path, default=None, metavar="FILE.csv", help="write every rejection here"
    )
    book_import.set_defaults(handler=_customers_import)

    book_export = commands.add_parser(
        "customers-export", help="write a company's customers to a CSV or XLSX spreadsheet"
    )
    book_export.add_argument("file", type=Path, help="FILE.csv or FILE.xlsx")
    book_export.add_argument("--tenant", required=True, help="the company's slug")
    book_export.set_defaults(handler=_customers_export)
    add_billing_commands(commands, guard)
    add_planning_commands(commands)
    return parser


async def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    await run_ingest(settings)
    return 0


async def _api(settings: Settings, args: argparse.Namespace) -> int:
    await run_api(settings)
    return 0


async def _user_add(settings: Settings, args: argparse.Namespace) -> int:
    password = secrets.token_urlsafe(12)
    async with database(settings) as db, db.pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, args.tenant)
        user = await accounts.create_user(
            conn,
            tenant.id,
            accounts.NewUser(args.username, args.full_name, accounts.Role(args.role), password),
        )
    print(
        f"created {user.role.value} {user.username!r} in {tenant.slug!r};"
        f" password (shown once, change it after the first login): {password}"
    )
    return 0


async def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from sanitrack.worker import run_worker

    await run_worker(settings)
    return 0


async def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    if settings.database_url is None:
        with embedded_postgres(settings.data_dir) as url:
            applied = await apply_migrations(url)
    else:
        applied = await apply_migrations(settings.database_url)
    print(f"applied migrations: {applied or 'none (up to date)'}")
    return 0


async def _device_add(settings: Settings, args: argparse.Namespace) -> int:
    async with database(settings) as db, db.pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, args.tenant, args.tenant)
        created = await fleet.create_device(conn, tenant, args.device, fleet.DeviceKind(args.kind))
    print(
        f"username: {created.username}\nsecret:   {created.secret}\n"
        "The secret is shown once; store it on the device now."
    )
    return 0


async def _broker_export(settings: Settings, args: argparse.Namespace) -> int:
    if settings.service_mqtt_password is None:
        print(
            "sanitrack: set SANITRACK_SERVICE_MQTT_PASSWORD for the service account",
            file=sys.stderr,
        )
        return 2
    service = ServiceAccount(SERVICE_USERNAME, settings.service_mqtt_password)
    async with database(settings) as db, db.pool.connection() as conn:
        logins = await fleet.list_logins(conn)
    args.password_file.write_text(password_file(logins, service))
    args.password_file.chmod(0o600)
    args.acl_file.write_text(acl_file(logins, service))
    print(
        f"wrote {len(logins)} device logins to {args.password_file} and {args.acl_file};"
        " reload Mosquitto (SIGHUP) to apply"
    )
    return 0


# ---------------------------------------------------------------- customer spreadsheets

COMPANY_ZONE = dt.timezone(dt.timedelta(hours=7), "ICT")  # the company's day: Việt Nam's
SHOWN_REJECTIONS = 20


async def _customers_import(settings: Settings, args: argparse.Namespace) -> int:
    import hashlib

    import audit
    from customers.errors import CustomersError
    from customers.importer import import_rows
    from customers.spreadsheets import HEADERS, read_sheet

    try:
        data = await asyncio.to_thread(args.file.read_bytes)
        sheet = read_sheet(data)
    except (OSError, CustomersError) as exc:
        print(f"sanitrack: {args.file}: {exc}", file=sys.stderr)
        return 1
    now = dt.datetime.now(COMPANY_ZONE)
    effective = args.effective_date or now.date()
    actor = audit.Actor(args.actor or f"import by {_login_name()}")
    digest = hashlib.sha256(data).hexdigest()
    async with database(settings) as db, db.pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, args.tenant)
        print(
            f"importing {args.file.name} into {tenant.slug!r} ({sheet.format}, about"
            f" {sheet.total_rows:,} rows, header on row {sheet.header_row}); billing changes"
            f" from {effective.isoformat()}",
            flush=True,
        )
        if sheet.ignored_headers:
            print(f"  columns not imported: {', '.join(sheet.ignored_headers)}", flush=True)
        began = time.monotonic()
        try:
            report = await import_rows(
                conn, tenant.id, actor, sheet, filename=args.file.name, file_sha256=digest,
                fmt=sheet.format, now=now, effective_date=effective, progress=_percent_printer(),
            )  # fmt: skip
        except CustomersError as exc:
            await conn.rollback()
            print(f"sanitrack: {args.file}: {exc}", file=sys.stderr)
            return 1
    took = time.monotonic() - began
    print(
        f"\n  rows      {report.rows_total:>9,}\n  created   {report.rows_created:>9,}\n"
        f"  updated   {report.rows_updated:>9,}\n  unchanged {report.rows_unchanged:>9,}\n"
        f"  rejected  {report.rows_rejected:>9,}\n  ({took:.1f} s, import #{report.import_id})"
    )
    if report.rejections:
        print("\nfirst rejected rows (row: column = value: reason):")
        for r in report.rejections[:SHOWN_REJECTIONS]:
            column = f"{HEADERS.get(r.field, r.field)} = {r.value!r}" if r.field else "row"
            print(f"  {r.row_number:>7}: {column}: {r.reason}")
        if len(report.rejections) > SHOWN_REJECTIONS:
            rest = len(report.rejections) - SHOWN_REJECTIONS
            hint = "" if args.report else " (--report FILE.csv writes them all)"
            print(f"  ... and {rest:,} more{hint}")
    if args.report:
        await asyncio.to_thread(_write_rejections, args.report, report.rejections)
        print(f"wrote {len(report.rejections):,} rejections to {args.report}")
    return 0


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _percent_printer() -> Callable[[int, int], None]:
    """A progress callback printing a line every 5 %."""
    shown = -1

    def show(done: int, total: int) -> None:
        nonlocal shown
        if total <= 0:
            return
        percent = min(100, done * 100 // total)
        if percent // 5 > shown:
            shown = percent // 5
            step = "reading" if done * 2 <= total and percent < 100 else "writing"
            print(f"  {percent:>3} %  {step}", flush=True)

    return show


def _write_rejections(path: Path, rejections: Sequence[Rejection]) -> None:
    """Every rejection as CSV for the office (UTF-8 with BOM; no cell runs as a formula)."""
    import csv

    from customers.spreadsheets import HEADERS, escape_text

    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Dòng (row)", "Cột (column)", "Giá trị (value)", "Lý do (reason)"])
        for r in rejections:
            column = HEADERS.get(r.field, r.field) if r.field else ""
            writer.writerow([r.row_number, column, escape_text(r.value or ""), r.reason])


async def _customers_export(settings: Settings, args: argparse.Namespace) -> int:
    from customers.errors import CustomersError
    from customers.importer import export_rows
    from customers.spreadsheets import format_of, sheet_writer

    try:
        fmt = format_of(args.file.name)
    except CustomersError as exc:
        print(f"sanitrack: {exc}", file=sys.stderr)
        return 2
    partial = args.file.with_name(args.file.name + ".partial")  # no half-written FILE
    written = 0
    async with database(settings) as db, db.pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, args.tenant)
        try:
            with partial.open("wb") as stream:
                writer = sheet_writer(fmt, stream)
                async for row in export_rows(conn, tenant.id):
                    writer.write(row)
                    written += 1
                writer.close()
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    partial.replace(args.file)
    print(f"wrote {written:,} service points of {tenant.slug!r} to {args.file}")
    return 0


DEMO_ACCOUNTANT = "ketoan"


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    import alerts  # here so `sanitrack --help` stays quick
    from billing.einvoice import FakeEInvoiceProvider
    from sanitrack.clock import SystemClock
    from sanitrack.demo_office import prepare_invoices, prepare_office
    from sanitrack.worker import run_office_jobs

    config = simulator.ScenarioConfig(
        seed=settings.demo.seed,
        vehicles=args.vehicles or settings.demo.vehicles,
        phones=settings.demo.phones if args.phones is None else args.phones,
        interval_s=settings.demo.interval_s,
        tenant=settings.demo.tenant,
        faults=simulator.fault_rates(settings.demo.faults),
    )
    # Real time from now; a day of work unless --duration says otherwise.
    until_s = args.duration if args.duration is not None else 12 * 3600.0
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    print("sanitrack demo: starting PostgreSQL and the MQTT broker ...", flush=True)
    async with (
        database(settings) as db,
        mqtt_endpoint(settings, db.pool) as (endpoint, broker),
        contextlib.AsyncExitStack() as stack,
    ):
        print("sanitrack demo: building the city ...", flush=True)
        scenario = await asyncio.to_thread(
            simulator.build_scenario, config, start, until_s, simulate.say
        )
        simulate.write_map(scenario, settings.data_dir / "demo-city.svg")
        registered = await simulator.register_scenario(db.pool, scenario, progress=simulate.say)
        office = await prepare_office(db.pool, config.tenant, start, settings.customers)
        simulate.say(
            f"customer office: {office.points} service points in {office.areas} areas,"
            f" this month's charges {office.charged_vnd:,} VND"
        )
        invoiced = await prepare_invoices(db.pool, config.tenant, start, settings.customers)
        if invoiced.issued:
            simulate.say(
                f"invoices: {invoiced.issued} issued on {invoiced.series} for"
                f" {invoiced.period_start:%m/%Y}, {invoiced.total_vnd:,} VND"
            )
        runtime = await stack.enter_async_context(alerts_runtime(settings, db, endpoint, {}))
        login = await simulate.demo_login(db.pool, config.tenant, settings.api.token_ttl_s)
        accountant = await simulate.demo_login(
            db.pool, config.tenant, settings.api.token_ttl_s,
            DEMO_ACCOUNTANT, "Kế toán (demo)", accounts.Role.ACCOUNTANT,
        )  # fmt: skip
        service, app = await ingest_with_rules(
            settings, db, endpoint, runtime, broker.credentials_changed if broker else None
        )
        base = f"http://{settings.http_host}:{settings.http_port}"
        ws = base.replace("http://", "ws://", 1)
        where = "embedded, data in " + str(settings.data_dir) if db.embedded else db.url
        truth_path = settings.data_dir / "demo-truth.jsonl"
        print(
            f"\n  Database : {where}\n"
            f"  Broker   : {'embedded amqtt' if broker else 'external'} on "
            f"{endpoint.host}:{endpoint.port}\n"
            f"  Health   : {base}/health\n"
            f"  Metrics  : {base}/metrics\n"
            f"  Live map : {base}/#token={login.token}\n"
            f"             (or log in: company {config.tenant}, user {login.username},"
            f" password {login.password})\n"
            f"  Customers: {base}/customers#token={accountant.token}\n"
            f"  Invoices : {base}/invoices#token={accountant.token}\n"
            f"             (or log in: company {config.tenant}, user {accountant.username},"
            f" password {accountant.password})\n"
            f"  API      : {base}/api/docs ; live feed {ws}/ws/live\n"
            f"  {config.vehicles} trucks and {config.phones} phones work Hà Đông in real time"
            f" ({settings.demo.faults} faults, truth in {truth_path}); Ctrl-C stops.\n",
            flush=True,
        )
        with simulate.truth_sink(truth_path) as sink:
            truth = simulator.TruthLog(start, sink)
            async with asyncio.TaskGroup() as tasks:
                ingest_task = tasks.create_task(service.run(), name="ingest")
                http_task = tasks.create_task(
                    serve_http(app, settings.http_host, settings.http_port), name="http"
                )
                background = [
                    tasks.create_task(task, name=f"alerts-{n}")
                    for n, task in enumerate(runtime.tasks)
                ]
                # The e-invoice provider is the local fake: issued invoices get coded.
                if settings.einvoice.base_url is None:
                    journal = settings.data_dir / "fake-einvoice.jsonl"
                    fake = await stack.enter_async_context(FakeEInvoiceProvider(journal=journal))
                    office_settings = settings.model_copy(update={"einvoice": fake.settings()})
                else:
                    office_settings = settings
                background.append(
                    tasks.create_task(
                        run_office_jobs(db.pool, office_settings, SystemClock()),
                        name="office-jobs",
                    )
                )
                if settings.demo.plan_tomorrow_s > 0 and until_s >= 300:
                    background.append(
                        tasks.create_task(
                            _plan_tomorrow(db.pool, settings, config.tenant, start),
                            name="plan-tomorrow",
                        )
                    )
                await asyncio.wait_for(service.subscribed.wait(), timeout=30)
                progress = tasks.create_task(_progress(db.pool), name="progress")
                stats = await simulator.play(
                    scenario,
                    registered.secrets,
                    endpoint.host,
                    endpoint.port,
                    truth,
                    speedup=1.0,
                    say=None,
                )
                await service.flush()
                progress.cancel()
                ingest_task.cancel()
                http_task.cancel()
                for task in background:
                    task.cancel()
        async with db.pool.connection() as conn:
            rows = await count_positions(conn)
            rejected = await count_dead_letters(conn)
            opened = await alerts.count_alerts(conn)
        print(simulate.summary(stats, truth))
        print(
            f"sanitrack demo: stopped; positions stored: {rows}, dead letters: {rejected},"
            f" alerts: {', '.join(f'{kind} {n}' for kind, n in sorted(opened.items())) or 'none'}"
        )
    return 0


async def _plan_tomorrow(pool: Any, settings: Settings, tenant_slug: str, now: dt.datetime) -> None:
    """The planner plans tomorrow's routes for the city while the demo runs: choose
    tomorrow on the live map's route panel to see them."""
    import planning

    local_now = now.astimezone(planning.LOCAL_ZONE)
    tomorrow = local_now.date() + dt.timedelta(days=1)
    await asyncio.sleep(15)  # let the live demo settle first
    try:
        async with pool.connection() as conn:
            tenant = await fleet.get_tenant(conn, tenant_slug)
            result = await planning.plan_day(
                conn, tenant.id, tomorrow, settings.planning, now=local_now,
                time_limit_s=settings.demo.plan_tomorrow_s, created_by="demo",
            )  # fmt: skip
    except planning.PlanningError as exc:
        print(f"  planner: tomorrow not planned: {exc}", flush=True)
        return
    summary = result.summary
    print(
        f"  planner: tomorrow ({tomorrow:%d/%m}) planned: {summary.vehicles_used} trucks,"
        f" {summary.served}/{summary.stops} stops, {summary.distance_m / 1000:.0f} km;"
        " choose the date on the live map's route panel",
        flush=True,
    )


async def _progress(pool: Any) -> None:
    last_rows, last_time = 0, time.monotonic()
    while True:
        await asyncio.sleep(5)
        async with pool.connection() as conn:
            rows = await count_positions(conn)
        now = time.monotonic()
        rate = (rows - last_rows) / (now - last_time)
        print(f"  positions stored: {rows:>8}  (+{rate:.1f}/s)", flush=True)
        last_rows, last_time = rows, now


if __name__ == "__main__":
    sys.exit(main())
