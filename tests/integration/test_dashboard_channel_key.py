"""The dashboard channel's API key against the real query API: the channel's own Secret, else the
service's key; none is a permanent refusal (the alert service then dead-letters, not retries)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finlake.contracts.alert_rule import Channel, ChannelType, SecretRef
from finlake.contracts.models import AlertEvent
from finlake_alerting.channels import DeliveryError
from finlake_alerting.channels.dashboard_feed import DashboardSender
from finlake_alerting.config import DashboardSettings
from finlake_alerting.routing import DASHBOARD, Target
from tests.conftest import free_port
from tests.integration.alerting_env import API_KEY, feed, query_api

T0 = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)


def _event(event_id: str) -> AlertEvent:
    return AlertEvent(
        event_id=event_id, rule="breakout", kind="price_cross", symbol="AAPL",
        severity="warning", window_start=T0, window_end=T0 + timedelta(minutes=1), fired_at=T0,
        value=251.0, threshold=250.0, message="AAPL crossed 250", labels={},
    )  # fmt: skip


def test_the_channel_s_own_key_is_used_and_no_key_is_a_permanent_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = Channel(type=ChannelType.DASHBOARD, secret_ref=SecretRef(name="api-keys"))
    variable = channel.secret_env()
    assert variable == "FINLAKE_SECRET_API_KEYS_API_KEY"  # the Secret's default key: api-key
    monkeypatch.setenv(variable, API_KEY)
    with query_api(tmp_path / "api", free_port()) as base:
        # A rule's alert service with no key of its own (an operator before the chart named one).
        sender = DashboardSender(DashboardSettings(url=base))
        try:
            sender.send([_event("own-key-1")], Target.of(channel))
            assert "own-key-1" in {alert["event_id"] for alert in feed(base)}
            with pytest.raises(DeliveryError) as refused:
                sender.send([_event("no-key-1")], DASHBOARD)
            assert refused.value.permanent
            assert "401" in str(refused.value)
            # The service's key serves the channels that name none.
            keyed = DashboardSender(DashboardSettings(url=base, api_key=API_KEY))
            keyed.send([_event("service-key-1")], DASHBOARD)
            keyed.close()
            assert "service-key-1" in {alert["event_id"] for alert in feed(base)}
        finally:
            sender.close()
