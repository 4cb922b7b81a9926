"""docker-compose.yml checked against the code, without Docker.

Every service built from our Dockerfile runs a real `sanitrack` subcommand, sets
only SANITRACK_ variables that name a setting and validate, and serves /health on
the port it publishes; Mosquitto reads the files `broker-export` writes; the URLs
point at services of the stack.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from sanitrack.app import SERVICE_USERNAME
from sanitrack.cli import _parser
from sanitrack.settings import (
    ENV_PREFIX,
    NESTED_DELIMITER,
    IngestSettings,
    Settings,
    SettingsError,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
# Where the eclipse-mosquitto image's own CMD reads its configuration.
MOSQUITTO_CONF_IN_IMAGE = "/mosquitto/config/mosquitto.conf"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# --- Reading the compose file as `docker compose` would -------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


def plausible_value(variable: str) -> str:
    """What the test sets a variable the operator must provide to: URL-safe, like a hex secret."""
    return "test-" + variable.lower().replace("_", "-")


def _substitute(match: re.Match[str]) -> str:
    if match["escaped"]:
        return "$"
    op = match["op"]
    # A variable with a default is taken as unset, so the default that ships is checked;
    # any other is taken as set, to a plausible value.
    if op in {"-", ":-", "+", ":+"}:
        return str(match["arg"])
    return plausible_value(match["name"] or match["bare"])


def interpolate(value: Any) -> Any:
    """``value`` with compose's ``${VAR...}`` interpolations replaced, recursively."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(_substitute, value)
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    return value


def load_compose() -> dict[str, Any]:
    document: dict[str, Any] = interpolate(yaml.safe_load(COMPOSE_FILE.read_text("utf-8")))
    return document


def dockerfile_exec_form(instruction: str) -> list[str]:
    """The JSON (exec) form of the Dockerfile's last ``instruction``, e.g. CMD."""
    lines = [
        line
        for line in DOCKERFILE.read_text("utf-8").splitlines()
        if line.startswith(instruction + " ")
    ]
    assert lines, f"Dockerfile has no {instruction}"
    value: list[str] = json.loads(lines[-1].removeprefix(instruction + " "))
    return value


def sanitrack_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services that run the image built from our Dockerfile."""
    built = {service.get("image") for service in services.values() if "build" in service}
    return {
        name: service
        for name, service in services.items()
        if "build" in service or service.get("image") in built
    }


def service_command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return dockerfile_exec_form("CMD")
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command]


def raw_environment(service: dict[str, Any]) -> dict[str, object]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs = [str(item).partition("=") for item in environment]
        return {name: value for name, _, value in pairs}
    return {str(name): value for name, value in environment.items()}


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in raw_environment(service).items()}


def container_ports(service: dict[str, Any]) -> set[int]:
    """Ports exposed or published inside the container (the right-hand side)."""
    ports = {int(str(entry).split("/")[0]) for entry in service.get("expose", [])}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume and bind mount."""
    found = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            found.append((str(entry["source"]), str(entry["target"])))
        else:
            source, target = str(entry).split(":")[:2]
            found.append((source, target))
    return found


def healthcheck_urls(service: dict[str, Any]) -> list[SplitResult]:
    test = (service.get("healthcheck") or {}).get("test") or []
    text = test if isinstance(test, str) else " ".join(str(part) for part in test)
    return [urlsplit(url) for url in re.findall(r"https?://[^\s'\"]+", text)]


def is_long_running(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) != "no"


# --- The code the compose file must agree with ---------------------------------------------


def cli_subcommands() -> set[str]:
    for action in _parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the sanitrack parser has no subcommands")


def cli_error(command: list[str]) -> str | None:
    """Why the `sanitrack` CLI would refuse ``command``, or None if it accepts it."""
    if not command or command[0] not in cli_subcommands():
        return f"{command[:1]} is not a sanitrack subcommand: {sorted(cli_subcommands())}"
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            _parser().parse_args(command)
    except SystemExit:
        return stderr.getvalue().strip() or "refused"
    return None


@dataclass(frozen=True, slots=True)
class SettingsField:
    path: tuple[str, ...]
    info: FieldInfo


def settings_field(variable: str) -> SettingsField | None:
    """The field of Settings an environment variable sets, or None if it names none.

    Mirrors pydantic-settings: the name after the prefix, lower-cased, split on the
    nested delimiter, each part a field of the model the previous part leads to.
    """
    if not variable.startswith(ENV_PREFIX):
        return None
    model: type[BaseModel] = Settings
    parts = variable.removeprefix(ENV_PREFIX).lower().split(NESTED_DELIMITER)
    for depth, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            return None
        if depth == len(parts) - 1:
            return SettingsField(tuple(parts), info)
        nested = info.annotation
        if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
            return None
        model = nested
    return None


def unknown_settings(variables: dict[str, str]) -> list[str]:
    """The SANITRACK_ variables that set no field (load_settings ignores top-level ones)."""
    return [
        name for name in variables if name.startswith(ENV_PREFIX) and settings_field(name) is None
    ]


def read_mosquitto_conf(path: Path) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in path.read_text("utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            options.setdefault(key, []).append(value.strip())
    return options


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = sorted(sanitrack_services(SERVICES))
# Services that serve /health and /metrics: long-running ones, and any that say so.
HTTP_SERVICES = [
    name
    for name in OURS
    if is_long_running(SERVICES[name]) or {"ports", "expose", "healthcheck"} & SERVICES[name].keys()
]


def http_port(service: dict[str, Any]) -> int:
    default = Settings.model_fields["http_port"].default
    return int(environment(service).get(ENV_PREFIX + "HTTP_PORT", default))


def the_service(image: str) -> tuple[str, dict[str, Any]]:
    found = [(n, s) for n, s in SERVICES.items() if str(s.get("image", "")).startswith(image + ":")]
    assert len(found) == 1, f"expected one {image} service, found {[n for n, _ in found]}"
    return found[0]


def mosquitto_conf() -> dict[str, list[str]]:
    _, service = the_service("eclipse-mosquitto")
    command = service_command(service) if "command" in service else []
    target = command[command.index("-c") + 1] if "-c" in command else MOSQUITTO_CONF_IN_IMAGE
    sources = [source for source, mounted in mounts(service) if mounted == target]
    assert len(sources) == 1, f"mosquitto does not mount a config at {target}"
    path = (COMPOSE_FILE.parent / sources[0]).resolve()
    assert path.is_relative_to(ROOT), f"{sources[0]} is outside the repository"
    assert path.is_file(), f"{sources[0]} is not a file of the repository"
    return read_mosquitto_conf(path)


# --- The services built from our Dockerfile ------------------------------------------------


def test_services_are_found() -> None:
    assert {"migrate", "ingest"} <= set(OURS)
    assert "ingest" in HTTP_SERVICES


@pytest.mark.parametrize("name", OURS)
def test_built_from_our_dockerfile(name: str) -> None:
    service = SERVICES[name]
    build = service.get("build", {"context": "."})
    build = {"context": build} if isinstance(build, str) else build
    assert (COMPOSE_FILE.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert "entrypoint" not in service, "the command is checked against the sanitrack CLI"


def test_dockerfile_runs_the_cli() -> None:
    assert dockerfile_exec_form("ENTRYPOINT") == ["sanitrack"]
    assert cli_error(dockerfile_exec_form("CMD")) is None


@pytest.mark.parametrize("name", OURS)
def test_command_is_a_sanitrack_subcommand(name: str) -> None:
    command = service_command(SERVICES[name])
    assert cli_error(command) is None, f"{name}: `sanitrack {shlex.join(command)}`"


@pytest.mark.parametrize("name", OURS)
def test_environment_values_are_strings(name: str) -> None:
    # Unquoted YAML turns 8080 into an int and true into a bool; compose wants strings.
    loose = {k: v for k, v in raw_environment(SERVICES[name]).items() if not isinstance(v, str)}
    assert not loose, f"{name}: quote these values: {loose}"


@pytest.mark.parametrize("name", OURS)
def test_environment_names_settings(name: str) -> None:
    unknown = unknown_settings(environment(SERVICES[name]))
    assert not unknown, f"{name}: no such setting: {unknown}"


@pytest.mark.parametrize("name", OURS)
def test_environment_validates(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    variables = environment(SERVICES[name])
    for variable in list(os.environ):
        if variable.startswith(ENV_PREFIX):
            monkeypatch.delenv(variable)
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    settings = load_settings()
    for variable, value in variables.items():
        field = settings_field(variable)
        if field is None:
            continue  # not a setting: test_environment_names_settings says so
        assert field.info.annotation is not None
        expected = TypeAdapter(field.info.annotation).validate_python(value)
        assert functools.reduce(getattr, field.path, settings) == expected, variable


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_published_port_is_the_http_port(name: str) -> None:
    service = SERVICES[name]
    port = http_port(service)
    assert container_ports(service) == {port}, f"{name}: SANITRACK_HTTP_PORT is {port}"
    if service.get("ports"):
        host = environment(service).get(
            ENV_PREFIX + "HTTP_HOST", Settings.model_fields["http_host"].default
        )
        assert host not in LOOPBACK, f"{name} listens on {host}: the published port is dead"


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_healthcheck_asks_health_on_the_http_port(name: str) -> None:
    service = SERVICES[name]
    urls = healthcheck_urls(service)
    assert urls, f"{name} has no healthcheck URL"
    for url in urls:
        assert url.hostname in LOOPBACK
        assert url.port == http_port(service)
        assert url.path == "/health"


def test_urls_point_at_the_stack() -> None:
    mqtt_port = {int(port) for port in mosquitto_conf()["listener"]}
    for name in OURS:
        variables = environment(SERVICES[name])
        database = variables.get(ENV_PREFIX + "DATABASE_URL")
        if database is not None:
            assert urlsplit(database).hostname == the_service("timescale/timescaledb")[0]
        mqtt = variables.get(ENV_PREFIX + "MQTT_URL")
        if mqtt is not None:
            parts = urlsplit(mqtt)
            assert parts.hostname == the_service("eclipse-mosquitto")[0]
            assert {parts.port} <= mqtt_port
            assert parts.username == SERVICE_USERNAME


def test_one_service_account_password() -> None:
    # broker-export hashes SANITRACK_SERVICE_MQTT_PASSWORD into the password file;
    # the ingest logs in with the password of its MQTT URL.
    passwords: set[str | None] = set()
    for name in OURS:
        variables = environment(SERVICES[name])
        if ENV_PREFIX + "SERVICE_MQTT_PASSWORD" in variables:
            passwords.add(variables[ENV_PREFIX + "SERVICE_MQTT_PASSWORD"])
        if ENV_PREFIX + "MQTT_URL" in variables:
            passwords.add(urlsplit(variables[ENV_PREFIX + "MQTT_URL"]).password)
    assert len(passwords) == 1, passwords


# --- Broker and database -------------------------------------------------------------------


def test_timescaledb_image() -> None:
    _, service = the_service("timescale/timescaledb")
    tag = str(service["image"]).partition(":")[2]
    assert tag, "pin the TimescaleDB image"
    assert tag != "latest", "pin the TimescaleDB image"
    assert "healthcheck" in service


def test_mosquitto_conf() -> None:
    options = mosquitto_conf()
    assert options["allow_anonymous"] == ["false"]
    assert options["persistence"] == ["true"]
    assert 1 <= int(options["max_inflight_messages"][0]) <= 65_535  # a 16-bit Receive Maximum
    # The queue must hold far more than what is in flight to the ingest, or it is no buffer.
    default = IngestSettings().max_pending_messages
    pending = max(
        int(environment(SERVICES[name]).get(ENV_PREFIX + "INGEST__MAX_PENDING_MESSAGES", default))
        for name in OURS
    )
    assert int(options["max_queued_messages"][0]) > 10 * pending


def test_broker_export_writes_what_mosquitto_reads() -> None:
    options = mosquitto_conf()
    _, mosquitto = the_service("eclipse-mosquitto")
    exports = [n for n in OURS if service_command(SERVICES[n])[0] == "broker-export"]
    assert exports, "no service runs `sanitrack broker-export`"
    for name in exports:
        args = _parser().parse_args(service_command(SERVICES[name]))
        for written, read in [
            (args.password_file, options["password_file"][0]),
            (args.acl_file, options["acl_file"][0]),
        ]:
            assert PurePosixPath(written) == PurePosixPath(read)
            # The same volume holds the file in both containers.
            export_sources = {
                s for s, t in mounts(SERVICES[name]) if PurePosixPath(read).is_relative_to(t)
            }
            broker_sources = {
                s for s, t in mounts(mosquitto) if PurePosixPath(read).is_relative_to(t)
            }
            assert export_sources & broker_sources, f"{read} is not shared with mosquitto"


# --- The checks can fail --------------------------------------------------------------------


def test_unknown_variables_are_detected() -> None:
    assert settings_field("SANITRACK_INGEST__NO_SUCH_FIELD") is None
    assert settings_field("SANITRACK_NO_SUCH_SETTING") is None
    assert settings_field("SANITRACK_HTTP_PORT__NESTED") is None
    assert settings_field("OTHER_HTTP_PORT") is None
    field = settings_field("SANITRACK_INGEST__BATCH_MAX_ROWS")
    assert field is not None
    assert field.path == ("ingest", "batch_max_rows")
    variables = {"SANITRACK_INGEST__NO_SUCH_FIELD": "1", "SANITRACK_HTTP_PORT": "8080", "TZ": "UTC"}
    assert unknown_settings(variables) == ["SANITRACK_INGEST__NO_SUCH_FIELD"]


def test_invalid_values_are_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANITRACK_INGEST__MAX_PENDING_MESSAGES", "5")
    with pytest.raises(SettingsError, match="SANITRACK_INGEST__MAX_PENDING_MESSAGES"):
        load_settings()


def test_bad_commands_are_detected() -> None:
    assert cli_error(["no-such-command"]) is not None
    assert cli_error(["api"]) is None
    assert "--password-file" in (cli_error(["broker-export"]) or "")
    assert cli_error(["ingest"]) is None


def test_interpolation() -> None:
    text = "a${SECRET:?set it}b$$c${PORT:-8080}d$NAME"
    assert interpolate(text) == "atest-secretb$c8080dtest-name"
