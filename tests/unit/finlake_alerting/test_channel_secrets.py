"""A channel whose Secret is not mounted fails for good at once: no retry can bring it."""

from __future__ import annotations

import pytest

from finlake.contracts.alert_rule import Channel, ChannelType, SecretRef, secret_env_name
from finlake_alerting.channels import DeliveryError
from finlake_alerting.channels.mailer import SmtpSender
from finlake_alerting.config import SmtpSettings
from finlake_alerting.routing import Target
from tests.unit.finlake_alerting.events import alert


def test_an_email_channel_whose_secret_is_unset_is_a_permanent_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = SecretRef(name="smtp", key="password")
    monkeypatch.delenv(secret_env_name("smtp", "password"), raising=False)
    channel = Channel(type=ChannelType.EMAIL, to=["ops@example.com"], secret_ref=ref)
    # Port 9 (discard) on loopback: the send must fail before any connection is tried.
    sender = SmtpSender(SmtpSettings(host="127.0.0.1", port=9, username="ops"))
    with pytest.raises(DeliveryError, match=r"FINLAKE_SECRET_SMTP_PASSWORD is not set") as raised:
        sender.send([alert()], Target.of(channel))
    assert raised.value.permanent
