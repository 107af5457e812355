"""A relay without TLS (Mailpit in development): with STARTTLS off the email goes out in plaintext,
and a password never does."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from finlake.contracts.alert_rule import Channel, ChannelType
from finlake_alerting.channels import DeliveryError
from finlake_alerting.channels.mailer import SmtpSender
from finlake_alerting.config import Settings, SmtpSettings
from finlake_alerting.routing import Target
from tests.conftest import free_port
from tests.unit.finlake_alerting.events import alert

TARGET = Target.of(Channel(type=ChannelType.EMAIL, to=["ops@example.com"]))


class PlainRelay:
    """aiosmtpd on loopback without a certificate (so no STARTTLS), taking AUTH in plaintext as
    a careless relay would: it records what arrives, mail and credentials."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[tuple[bool, email.message.Message]] = []
        self.logins: list[object] = []
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, auth_require_tls=False,
            authenticator=self._authenticate,
        )  # fmt: skip

    def _authenticate(
        self, _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: object
    ) -> AuthResult:
        self.logins.append(data)
        return AuthResult(success=True)

    async def handle_DATA(self, _server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.messages.append((session.ssl is not None, message))
        return "250 OK"

    def __enter__(self) -> PlainRelay:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


@pytest.fixture
def relay() -> Iterator[PlainRelay]:
    with PlainRelay() as running:
        yield running


def test_without_starttls_the_email_reaches_a_relay_that_offers_none(relay: PlainRelay) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=relay.port, starttls=False, timeout_s=5)
    SmtpSender(settings).send([alert()], TARGET)
    [(encrypted, message)] = relay.messages
    assert not encrypted
    assert message["To"] == "ops@example.com"
    assert relay.logins == []


def test_a_password_is_never_sent_without_tls(relay: PlainRelay) -> None:
    settings = SmtpSettings(
        host="127.0.0.1", port=relay.port, starttls=False, timeout_s=5,
        username="alerts", password="s3cret",
    )  # fmt: skip
    with pytest.raises(DeliveryError, match=r"STARTTLS off .* in plaintext") as raised:
        SmtpSender(settings).send([alert()], TARGET)
    assert raised.value.permanent  # no retry encrypts the connection
    assert relay.logins == []
    assert relay.messages == []


def test_starttls_is_a_setting_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The chart's alerting.smtp.starttls reaches the service as this variable (platform ConfigMap).
    monkeypatch.setenv("FINLAKE_ALERTING__SMTP__STARTTLS", "false")
    assert Settings().alerting.smtp.starttls is False
    monkeypatch.delenv("FINLAKE_ALERTING__SMTP__STARTTLS")
    assert Settings().alerting.smtp.starttls is True
