from __future__ import annotations

import pytest

from sanitrack.cli import main
from sanitrack.settings import SettingsError, load_settings, unknown_variables


def test_defaults_need_no_environment() -> None:
    settings = load_settings(environ={})
    assert settings.database_url is None
    assert settings.mqtt_url is None
    assert settings.ingest.batch_max_rows == 5000


def test_nested_variables_use_a_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANITRACK_INGEST__BATCH_MAX_ROWS", "250")
    monkeypatch.setenv("SANITRACK_POSITIONS__RETENTION_DAYS", "30")
    settings = load_settings()
    assert settings.ingest.batch_max_rows == 250
    assert settings.positions.retention_days == 30


def test_a_bad_value_names_the_variable_and_the_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANITRACK_INGEST__BATCH_MAX_ROWS", "0")
    with pytest.raises(SettingsError, match=r"SANITRACK_INGEST__BATCH_MAX_ROWS='0'.*greater"):
        load_settings()


def test_a_misspelt_variable_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANITRACK_HTTP_PORTT", "9000")
    with pytest.raises(SettingsError, match="SANITRACK_HTTP_PORTT"):
        load_settings()
    assert unknown_variables(
        {
            "SANITRACK_INGEST__NO_SUCH": "1",
            "SANITRACK_TEST_X": "1",
            "SANITRACK_HTTP_PORT__X": "1",
            "OTHER": "1",
        }
    ) == ["SANITRACK_HTTP_PORT__X", "SANITRACK_INGEST__NO_SUCH"]


def test_secrets_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANITRACK_MQTT_URL", "http://user:hunter2@broker")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "SANITRACK_MQTT_URL" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_the_cli_exits_with_the_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SANITRACK_HTTP_PORT", "70000")
    assert main(["migrate"]) == 2
    assert "SANITRACK_HTTP_PORT=" in capsys.readouterr().err
