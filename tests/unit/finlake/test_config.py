from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from finlake.config import FinlakeSettings, effective_config


def test_defaults_work_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FINLAKE_HOME", "FINLAKE_KAFKA__PORT", "FINLAKE_REGISTRY__URL"):
        monkeypatch.delenv(name, raising=False)
    settings = FinlakeSettings()
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert settings.registry.ccompat_url == "http://127.0.0.1:8081/apis/ccompat/v7"
    assert settings.home == Path(".finlake")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINLAKE_HOME", "/srv/lake")
    monkeypatch.setenv("FINLAKE_KAFKA__PORT", "19092")
    monkeypatch.setenv("FINLAKE_TOPICS__MARKET_DATA_PARTITIONS", "12")
    monkeypatch.setenv("FINLAKE_REGISTRY__URL", "http://registry:8080/apis/ccompat/v7")
    settings = FinlakeSettings()
    assert settings.home == Path("/srv/lake")
    assert settings.kafka.bootstrap == "127.0.0.1:19092"
    assert settings.topics.market_data_partitions == 12
    assert settings.registry.ccompat_url == "http://registry:8080/apis/ccompat/v7"
    assert settings.warehouse == Path("/srv/lake/warehouse")


def test_invalid_setting_is_rejected_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINLAKE_KAFKA__PORT", "70000")
    with pytest.raises(ValidationError, match="port"):
        FinlakeSettings()


def test_effective_config_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINLAKE_REGISTRY__BASIC_AUTH_PASSWORD", "hunter2")
    shown = json.dumps(effective_config(FinlakeSettings()))
    assert "hunter2" not in shown
    assert '"basic_auth_password": "********"' in shown
    assert '"bootstrap": "127.0.0.1:9092"' in shown
