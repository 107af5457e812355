from __future__ import annotations

import json
import logging

import pytest

from finlake_ingestion.config import IngestionSettings
from finlake_ingestion.logs import JsonFormatter


def test_log_lines_are_json_with_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "WARNING", "msg": "yahoo %s", "args": ("down",), "kind": "429"}
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "yahoo down"
    assert (line["level"], line["logger"], line["kind"]) == ("warning", "x", "429")
    assert line["time"].endswith("+00:00")


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINLAKE_KAFKA__PORT", "19092")
    monkeypatch.setenv("FINLAKE_YAHOO__SYMBOLS", "aapl, msft,BRK-B")
    monkeypatch.setenv("FINLAKE_YAHOO__POLL_INTERVAL_S", "15")
    monkeypatch.setenv("FINLAKE_INGESTION__SOURCE", "simulate")
    settings = IngestionSettings()
    assert settings.kafka.bootstrap == "127.0.0.1:19092"
    assert settings.yahoo.symbols == ("AAPL", "MSFT", "BRK-B")
    assert settings.yahoo.poll_interval_s == 15
    assert settings.ingestion.source == "simulate"
    assert settings.state_dir.name == "ingestion"


def test_bad_setting_is_a_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINLAKE_YAHOO__INTERVAL", "3m")
    with pytest.raises(ValueError, match="interval"):
        IngestionSettings()


def test_a_budget_too_small_for_a_new_symbol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINLAKE_YAHOO__REQUESTS_PER_MINUTE", "1")
    with pytest.raises(ValueError, match=r"1 request\(s\) per minute can never fetch a new symbol"):
        IngestionSettings()
    monkeypatch.setenv("FINLAKE_YAHOO__REQUESTS_PER_MINUTE", "2")
    assert IngestionSettings().yahoo.requests_per_minute == 2
