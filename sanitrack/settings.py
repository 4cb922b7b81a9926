"""Settings of every Sanitrack process: environment variables prefixed SANITRACK_.

Nested groups use a double underscore: ``SANITRACK_INGEST__BATCH_MAX_ROWS=5000``.
Every field carries its unit in its name and a default that works on a laptop;
a bad value stops the process at start-up with the name of the variable.
"""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "SANITRACK_"
NESTED_DELIMITER = "__"


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the variable."""


class IngestSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field("sanitrack-ingest", min_length=1, max_length=64)
    # "5" for Mosquitto and EMQX (the broker honours our Receive Maximum);
    # the embedded amqtt broker always speaks "3.1.1".
    mqtt_protocol: Literal["3.1.1", "5"] = "5"
    # How long the broker keeps our session (and queues for it) while ingest is away.
    session_expiry_s: int = Field(7 * 86_400, ge=60, le=4_294_967_295)
    # Rows go to PostgreSQL when either bound is reached, whichever comes first.
    batch_max_rows: int = Field(5000, ge=1, le=100_000)
    batch_max_delay_ms: int = Field(100, ge=1, le=60_000)
    # Fixes of one device are held this long (wall time) and released in fix-time order.
    # 0: each fix goes to the rules engine as it arrives (sorted within its message), with
    # no delay on the alert path; the engine re-evaluates the rare late one in order.
    reorder_window_ms: int = Field(0, ge=0, le=60_000)
    # Messages received but not yet stored or dead-lettered. Past this bound the
    # subscriber stops reading, so the broker holds the rest (MQTT back-pressure).
    max_pending_messages: int = Field(20_000, ge=10, le=65_535)
    # Fix validation (ARCHITECTURE §3).
    max_future_s: int = Field(300, ge=0, le=86_400)
    max_speed_kmh: float = Field(300.0, gt=0, le=1000)
    max_payload_bytes: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_batch_fixes: int = Field(1000, ge=1, le=100_000)
    # Traccar-style jump filter: a fix implying a faster move than this from the
    # previous accepted fix is rejected, unless the next fixes confirm it.
    max_implied_speed_kmh: float = Field(250.0, gt=0, le=2000)
    jump_min_distance_m: float = Field(100.0, ge=0)
    jump_confirm_fixes: int = Field(2, ge=1, le=20)
    # How long to wait before retrying the database after a failed write.
    retry_initial_ms: int = Field(200, ge=1)
    retry_max_ms: int = Field(5000, ge=1)


class RulesSettings(BaseModel):
    """Thresholds of the rules engine (issue: rules engine). Times are fix times."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Run the rules engine in the ingest process (off: positions only).
    enabled: bool = True

    # Motion: moving above the first speed, stopped below the second (hysteresis).
    moving_above_kmh: float = Field(4.0, gt=0, le=50)
    stopped_below_kmh: float = Field(2.0, ge=0, le=50)
    # Route progress moves at most this much beyond the distance the vehicle drove.
    progress_slack_m: float = Field(40.0, ge=0, le=1000)
    # After a gap in the fixes (a dropout, a long interval) the straight line between two
    # fixes says little about the way driven: progress may also move at this speed for the
    # part of the gap beyond progress_gap_free_s.
    progress_max_speed_kmh: float = Field(40.0, gt=0, le=200)
    progress_gap_free_s: float = Field(10.0, ge=0, le=3600)
    progress_behind_m: float = Field(60.0, ge=0, le=1000)
    # wrong_route: off the expected path by more than max(corridor, accuracy + margin) ...
    accuracy_margin_m: float = Field(10.0, ge=0, le=200)
    # ... for at least this long and this many fixes; resolved when back inside this long.
    min_off_route_s: float = Field(30.0, ge=0, le=3600)
    min_off_route_fixes: int = Field(3, ge=1, le=100)
    # ... or this many, when each is this many times the threshold away.
    clearly_off_fixes: int = Field(2, ge=1, le=100)
    clearly_off_factor: float = Field(2.0, ge=1, le=20)
    resolve_s: float = Field(20.0, ge=0, le=3600)
    # A fix less accurate than this is not evidence of being off route.
    max_accuracy_m: float = Field(100.0, gt=0, le=1000)
    # missed_stop: standing still inside the stop's radius this long serves it ...
    min_dwell_s: float = Field(20.0, gt=0, le=3600)
    # (a stand is timed from halfway between the last moving fix and its first stopped one,
    # at most this much before the first stopped fix)
    stand_lead_max_s: float = Field(15.0, ge=0, le=600)

    # ... passing through it no faster than this (mean) makes it probably served ...
    probable_max_speed_kmh: float = Field(5.0, ge=0, le=50)
    # ... and progress this far beyond it, unserved, tells the driver at once.
    pass_margin_m: float = Field(40.0, ge=0, le=1000)
    # Stops passed while no fix came for this long are unseen, not missed: there is no
    # evidence either way (the offline alert tells the dispatcher about the gap).
    unseen_gap_s: float = Field(60.0, gt=0, le=86_400)
    # ... or it was probably served when time tells (sparse fixes): from the last moving fix
    # at least inference_zone_m before the stop to the first one as far after it, the truck
    # took longer than driving that stretch of path at the plan's pace (or at the faster
    # speed it reported) by enough to serve every stop in between: each at least
    # inference_min_service_s and inference_service_share of its planned service time. A
    # span longer than max_inference_gap_s (0: no inference), or cut by a gap of
    # unseen_gap_s, a fix off the path or in a site, or one standing away from every stop
    # (a hold-up in traffic), tells nothing.
    inference_zone_m: float = Field(30.0, ge=0, le=500)
    inference_min_service_s: float = Field(15.0, gt=0, le=3600)
    inference_service_share: float = Field(0.6, ge=0, le=2)
    max_inference_gap_s: float = Field(300.0, ge=0, le=3600)
    # ... or, for fixes at least stretch_min_gap_s apart (0: off), when the time from the
    # first fix near a stretch's stops (the nearest stop within its radius widened by the
    # accuracy, progress within inference_zone_m + stretch_turn_m of it) to the last, less
    # the drive, covers stretch_service_share of the stretch's service, with one fix
    # standing, and is at most stretch_hold_up_factor times it plus 5 minutes (longer: a
    # hold-up). Looked at only when a stop is about to be missed.
    stretch_min_gap_s: float = Field(15.0, ge=0, le=3600)
    stretch_turn_m: float = Field(100.0, ge=0, le=5000)
    stretch_service_share: float = Field(0.8, gt=0, le=5)
    stretch_hold_up_factor: float = Field(3.0, gt=0, le=100)
    # A time window closed (or a run ended) this long ago: its unserved stops are missed.
    sweep_grace_s: float = Field(60.0, ge=0, le=3600)
    # A run is on from this long before its planned start ...
    run_early_s: float = Field(1800.0, ge=0, le=86_400)
    # ... until the vehicle is back within this of the path's end, or this long past its end.
    run_end_margin_m: float = Field(60.0, ge=0, le=5000)
    run_overrun_s: float = Field(7200.0, ge=0, le=86_400)
    # offline: nothing heard for this long while on shift (an active run or ignition on).
    offline_after_s: float = Field(180.0, gt=0, le=86_400)
    # speeding: above the limit for this long; cleared below it for speeding_clear_s.
    speed_limit_kmh: float = Field(50.0, gt=0, le=300)
    speeding_min_s: float = Field(20.0, ge=0, le=3600)
    speeding_clear_s: float = Field(15.0, ge=0, le=3600)
    # idle: ignition on, not moving, away from stops and sites, for this long.
    idle_after_s: float = Field(600.0, gt=0, le=86_400)
    # geofence_enter / geofence_exit: this many fixes in a row on the new side.
    geofence_confirm_fixes: int = Field(2, ge=1, le=20)
    # A fix older than the newest by more than this is not re-evaluated in order.
    rewind_window_s: float = Field(300.0, ge=0, le=86_400)
    # How often the clock sweep runs (offline, closed windows, ended runs).
    sweep_interval_s: float = Field(1.0, gt=0, le=600)
    # How often route runs and geofences are reloaded from the database.
    reload_interval_s: float = Field(30.0, gt=0, le=3600)
    # The alert writer commits at most once per this interval (a burst is gathered).
    write_interval_s: float = Field(0.025, ge=0, le=5)


class PositionsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    retention_days: int = Field(90, ge=1, le=3650)
    # Native partitioning: daily partitions are kept this far ahead of today.
    partitions_ahead_days: int = Field(3, ge=1, le=60)
    # TimescaleDB: chunk interval and when chunks are compressed.
    chunk_interval_hours: int = Field(24, ge=1, le=24 * 30)
    compress_after_hours: int = Field(24, ge=1, le=24 * 365)
    maintenance_interval_s: int = Field(3600, ge=1)


class BrokerSettings(BaseModel):
    """The embedded amqtt broker (used when SANITRACK_MQTT_URL is unset)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    # Not 1883, so it never collides with a system Mosquitto; 0 picks a free port.
    port: int = Field(11883, ge=0, le=65_535)
    # Devices are looked up in the database and cached this long after a login.
    credential_cache_s: int = Field(30, ge=0)


class ApiSettings(BaseModel):
    """The HTTP API, logins and the live map (SANITRACK_API__*)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # A login's token expires after this long (a dispatcher's shift and some).
    token_ttl_s: int = Field(12 * 3600, ge=60, le=90 * 86_400)
    # This many wrong passwords in a row lock the account for lockout_s.
    max_failed_logins: int = Field(5, ge=1, le=100)
    lockout_s: int = Field(900, ge=1, le=86_400)
    # Login attempts per client address: a burst, then this many per minute.
    login_burst: int = Field(10, ge=1, le=1000)
    login_per_minute: float = Field(10.0, gt=0, le=10_000)
    # A raster tile server for the live map ({z}/{x}/{y}); unset: the street network is
    # drawn from the database as a vector layer, which works offline.
    map_tile_url: str | None = Field(None, pattern=r"^https?://.*\{z\}.*\{x\}.*\{y\}")
    map_tile_attribution: str = Field("", max_length=500)
    # Positions reach live-map clients in one frame per this interval.
    live_positions_interval_ms: int = Field(100, ge=10, le=5000)
    # A client that has not taken its positions for this long is closed (4408).
    live_max_position_lag_s: float = Field(30.0, gt=0, le=3600)
    # Per-client bound on queued alerts and stop visits before it is closed (4408).
    live_max_queued: int = Field(1000, ge=10, le=1_000_000)
    # The ingest announces positions over NOTIFY for `sanitrack api` processes; off when the
    # ingest process serves the live map itself (the default, and the demo).
    notify_positions: bool = False
    # How often the ingest announces them: short, since the API's own frames (every
    # live_positions_interval_ms) come after, and the two waits add up.
    notify_positions_interval_ms: int = Field(25, ge=5, le=5000)


class DemoSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: str = Field("hadong-urenco", pattern=r"^[a-z0-9-]{1,64}$")
    vehicles: int = Field(30, ge=1, le=1000)
    phones: int = Field(60, ge=0, le=2000)
    interval_s: float = Field(5.0, ge=1, le=30)
    faults: str = Field("light", pattern="^(none|light|default|heavy)$")
    seed: int = 42
    # The planner plans tomorrow's routes in the background (0: not at all); demos shorter
    # than five minutes skip it.
    plan_tomorrow_s: float = Field(20.0, ge=0, le=600)


class NotificationSettings(BaseModel):
    """Customers' notices over email and SMS (SANITRACK_NOTIFICATIONS__*): the outbox is
    always written; a channel is sent only when its server is configured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # SMTP relay for email; unset: email stays in the outbox, unsent.
    smtp_host: str | None = Field(None, min_length=1, max_length=255)
    smtp_port: int = Field(587, ge=1, le=65_535)
    smtp_from: str = Field(
        "Sanitrack <no-reply@sanitrack.invalid>", min_length=3, max_length=320, pattern=r"@"
    )
    # STARTTLS after connecting (port 587); off only for a relay on the same host.
    smtp_starttls: bool = True
    smtp_username: str | None = Field(None, min_length=1, max_length=255)
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(30.0, gt=0, le=300)
    # SMS gateway (POST {to, text, client_ref} with a bearer key); unset: SMS stays unsent.
    sms_gateway_url: str | None = Field(None, pattern=r"^https?://[^\s/]+")
    sms_api_key: SecretStr | None = None
    sms_timeout_s: float = Field(15.0, gt=0, le=300)
    # A message is tried this many times in all, then marked failed.
    max_attempts: int = Field(8, ge=1, le=100)
    # Retries wait retry_initial_s, doubling up to retry_max_s, each jittered down by up
    # to half (so senders that failed together do not retry together).
    retry_initial_s: float = Field(60.0, gt=0, le=86_400)
    retry_max_s: float = Field(6 * 3600.0, gt=0, le=7 * 86_400)
    # A claimed message is taken back for another try after this long without a result
    # (the worker died mid-send); longer than any send may take.
    claim_timeout_s: float = Field(600.0, ge=10, le=86_400)
    # The worker looks for due messages this often, and claims up to batch_max at once,
    # sending up to parallel_sends of them at the same time.
    send_interval_s: float = Field(5.0, gt=0, le=3600)
    batch_max: int = Field(100, ge=1, le=10_000)
    parallel_sends: int = Field(4, ge=1, le=100)

    @model_validator(mode="after")
    def _check(self) -> NotificationSettings:
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be at least retry_initial_s")
        longest_send_s = max(self.smtp_timeout_s, self.sms_timeout_s) * 2
        if self.claim_timeout_s <= longest_send_s:
            raise ValueError(
                f"claim_timeout_s must exceed twice the longest send timeout ({longest_send_s} s)"
            )
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("smtp_username and smtp_password are set together or not at all")
        if self.sms_gateway_url is not None and self.sms_api_key is None:
            raise ValueError("sms_api_key is required with sms_gateway_url")
        return self


class CustomersSettings(BaseModel):
    """The customer book (SANITRACK_CUSTOMERS__*)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The company's time zone: its "today" decides when a dated change comes into force.
    timezone: str = Field("Asia/Ho_Chi_Minh", min_length=1, max_length=64)
    # Four eyes: whoever submitted a change request may not approve it.
    allow_self_approval: bool = False
    # A collector's GPS fix less accurate than this is kept but not used.
    capture_max_accuracy_m: float = Field(50.0, gt=0, le=1000)
    # A point placed by GPS or by hand moves without approval only this far.
    capture_auto_apply_within_m: float = Field(30.0, ge=0, le=1000)
    # Houses along a street are numbered odd and even on either side, this far apart.
    house_frontage_m: float = Field(4.5, gt=0, le=100)
    # How often the worker applies approved changes that came due and brings the points'
    # current terms up to date (a day's change is applied within this of midnight).
    sweep_interval_s: float = Field(600.0, gt=0, le=86_400)
    # How often the worker recounts the customer map's clusters when points changed, and
    # the longest it lets them age in any case.
    map_cells_interval_s: float = Field(60.0, gt=0, le=86_400)
    map_cells_max_age_s: float = Field(3600.0, gt=0, le=7 * 86_400)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Ho_Chi_Minh)") from None
        return value


def _mqtt_url_ok(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
        raise ValueError("must look like mqtt://user:password@host:1883")
    return url


EINVOICE_TAX_CODE = r"^([0-9]{10}(-[0-9]{3})?|[0-9]{12})$"


class EInvoiceSettings(BaseModel):
    """The provider that signs invoices and has them coded by the tax authority, reached
    over the protocol of ``billing.einvoice.provider``; unset ``base_url``: issued invoices
    stay queued, unsent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The provider's API root (paths /api/invoices...) and its key (header X-API-Key).
    base_url: str | None = Field(None, pattern=r"^https?://[^\s/]+")
    api_key: SecretStr | None = None
    # The seller's account at the provider, when it asks for one (HTTP basic auth).
    username: str | None = Field(None, min_length=1, max_length=255)
    password: SecretStr | None = None
    # The provider's own tax code, written in every invoice's XML (MSTTCGP).
    provider_tax_code: str | None = Field(None, pattern=EINVOICE_TAX_CODE)
    # One exchange (a submission or a status question) ends after this long, all in.
    timeout_s: float = Field(30.0, gt=0, le=300)
    # Failed tries in a row before the sender stops and leaves the invoice to the office.
    max_attempts: int = Field(10, ge=1, le=100)
    # Retries wait retry_initial_s, doubling up to retry_max_s, each jittered down by up to
    # half (invoices that failed together do not come back together).
    retry_initial_s: float = Field(60.0, gt=0, le=86_400)
    retry_max_s: float = Field(3600.0, gt=0, le=7 * 86_400)
    # A sent invoice's status is asked again this long after a "pending" answer.
    poll_interval_s: float = Field(60.0, gt=0, le=86_400)
    # A claimed invoice is taken back for another try after this long without a result
    # (the worker died mid-exchange); at least twice timeout_s.
    claim_timeout_s: float = Field(600.0, gt=0, le=86_400)
    # The worker looks for due invoices this often, claims up to batch_max at once and has
    # up to parallel_sends exchanges in flight.
    send_interval_s: float = Field(10.0, gt=0, le=3600)
    batch_max: int = Field(100, ge=1, le=10_000)
    parallel_sends: int = Field(4, ge=1, le=100)

    @model_validator(mode="after")
    def _check(self) -> EInvoiceSettings:
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be at least retry_initial_s")
        if self.claim_timeout_s < 2 * self.timeout_s:
            raise ValueError(
                f"claim_timeout_s ({self.claim_timeout_s}) must be at least twice timeout_s"
                f" ({self.timeout_s}): a claim must outlast the exchange it covers"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password are set together or not at all")
        if self.base_url is not None and self.api_key is None:
            raise ValueError("api_key: required when base_url is set")
        return self


class PlanningSettings(BaseModel):
    """The route planner (planning/): engine, time limits, and what a planned run carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # bench/planning.py measured both on the VRPLIB sets; the README has the table.
    engine: Literal["pyvrp", "ortools"] = "pyvrp"
    time_limit_s: float = Field(60.0, gt=0, le=3600)
    # A re-plan during the day (road blocked, breakdown, new request) must be quick.
    replan_time_limit_s: float = Field(5.0, gt=0, le=300)
    # Unloading at a transfer station or landfill.
    unload_s: int = Field(600, ge=0, le=7200)
    # A truck in use costs this many metres' worth: fewer trucks when it barely matters.
    vehicle_cost_m: int = Field(5000, ge=0, le=1_000_000)
    # A working second counts as this many metres (drivers are paid by the hour).
    second_cost_m: int = Field(3, ge=0, le=1000)
    corridor_m: float = Field(40.0, gt=0, le=1000)
    dwell_radius_m: float = Field(25.0, gt=0, le=500)
    unload_dwell_radius_m: float = Field(60.0, gt=0, le=500)
    # Without a street network: great-circle distance times circuity, at this speed.
    circuity: float = Field(1.35, ge=1.0, le=3.0)
    straight_line_speed_kmh: float = Field(18.0, gt=0, le=120)
    # Street speeds count at this share of the free-flow speed (traffic, turns, stops).
    street_speed_factor: float = Field(0.91, gt=0, le=1.5)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="ignore",
        frozen=True,
    )

    # Unset: an embedded PostgreSQL is started with its data under data_dir.
    database_url: str | None = None
    # Unset: an embedded amqtt broker is started in-process.
    mqtt_url: str | None = None
    data_dir: Path = Path(".sanitrack")
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65_535)
    db_pool_min_size: int = Field(1, ge=1, le=100)
    db_pool_max_size: int = Field(8, ge=1, le=200)
    log_level: Annotated[str, Field(pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")] = "INFO"
    log_json: bool = False
    # Fixed bearer tokens, each for one tenant with the dispatcher role:
    # {"token": "tenant-slug"}; for tools and single-tenant set-ups (people log in).
    live_tokens: dict[str, str] = Field(default_factory=dict)
    # Credentials of the ingest service account on the embedded broker;
    # a random one is generated at start-up when unset.
    service_mqtt_password: str | None = None

    ingest: IngestSettings = IngestSettings()
    positions: PositionsSettings = PositionsSettings()
    rules: RulesSettings = RulesSettings()
    broker: BrokerSettings = BrokerSettings()
    demo: DemoSettings = DemoSettings()
    api: ApiSettings = ApiSettings()
    notifications: NotificationSettings = NotificationSettings()
    customers: CustomersSettings = CustomersSettings()
    einvoice: EInvoiceSettings = EInvoiceSettings()
    planning: PlanningSettings = PlanningSettings()

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        return None if value is None else _mqtt_url_ok(value)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in {"postgresql", "postgres"}:
            raise ValueError("must look like postgresql://user@host:5432/dbname")
        return value


def env_name(location: tuple[int | str, ...]) -> str:
    """The environment variable that sets the field at ``location``."""
    return ENV_PREFIX + NESTED_DELIMITER.join(str(part).upper() for part in location)


# Variables with these names carry passwords: never echo their values.
_SECRET_FIELDS = {"database_url", "mqtt_url", "service_mqtt_password", "live_tokens"}
# Nested settings that carry passwords.
_SECRET_NESTED = {"smtp_password", "sms_api_key"}
# Read by the test suite, not by Sanitrack processes.
_NOT_SETTINGS = ("SANITRACK_TEST_",)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """SANITRACK_ variables that name no setting (a typo would otherwise be ignored)."""
    unknown = []
    for name in environ:
        if not name.startswith(ENV_PREFIX) or name.startswith(_NOT_SETTINGS):
            continue
        model: type[BaseModel] = Settings
        parts = name[len(ENV_PREFIX) :].lower().split(NESTED_DELIMITER)
        for depth, part in enumerate(parts):
            field = model.model_fields.get(part)
            if field is None:
                unknown.append(name)
                break
            annotation = field.annotation
            is_group = isinstance(annotation, type) and issubclass(annotation, BaseModel)
            if depth < len(parts) - 1:
                if not is_group:
                    unknown.append(name)
                    break
                assert isinstance(annotation, type)
                model = annotation
    return sorted(unknown)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError naming the bad variable."""
    unknown = unknown_variables(os.environ if environ is None else environ)
    if unknown:
        raise SettingsError("unknown settings (misspelt?): " + ", ".join(unknown))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # A whole group's input (a model-level check) may hold a password too.
            secret = (
                error["loc"][0] in _SECRET_FIELDS
                or bool(_SECRET_NESTED & set(error["loc"]))
                or isinstance(error.get("input"), Mapping)
            )
            shown = "(hidden)" if secret else repr(error.get("input"))
            problems.append(f"{env_name(error['loc'])}={shown}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
