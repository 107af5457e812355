"""Email over SMTP: STARTTLS, then AUTH, then one message with a text and an HTML part.

STARTTLS can be turned off for a relay without TLS (Mailpit in development); AUTH is then refused,
so a password never crosses a plaintext connection."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pydantic import SecretStr

from finlake.contracts.models import AlertEvent
from finlake_alerting.channels import DeliveryError
from finlake_alerting.channels.content import html_body, subject, text_body
from finlake_alerting.config import SmtpSettings
from finlake_alerting.credentials import MissingSecretError, channel_secret
from finlake_alerting.routing import Target


def build_email(events: Sequence[AlertEvent], sender: str, to: Sequence[str]) -> EmailMessage:
    """The email for a group of events of one rule."""
    message = EmailMessage()
    message["Subject"] = subject(events)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="finlake")
    message["X-Finlake-Event-Ids"] = " ".join(e.event_id for e in events)
    message.set_content(text_body(events))
    message.add_alternative(html_body(events), subtype="html")
    return message


class SmtpSender:
    """Sends each group as one email; a new session per message (no idle connection to lose).

    Thread-safe: nothing is shared between sends but the settings and the TLS context (an
    ``ssl.SSLContext`` may wrap sockets in several threads at once)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._tls = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )

    def _password(self, target: Target) -> SecretStr | None:
        return channel_secret(target.channel, self.settings.password)

    def send(self, events: Sequence[AlertEvent], target: Target) -> None:
        """Deliver one email to the target's recipients."""
        smtp = self.settings
        message = build_email(events, smtp.sender, target.to)
        try:
            password = self._password(target)
        except MissingSecretError as error:  # no retry brings the variable: dead-letter now
            raise DeliveryError(str(error), permanent=True) from None
        if smtp.username and not smtp.starttls:
            # Refused before connecting: no retry makes the connection encrypted.
            raise DeliveryError(
                "SMTP username set but STARTTLS off (FINLAKE_ALERTING__SMTP__STARTTLS=false): "
                "the password would cross the connection in plaintext; turn STARTTLS on or "
                "unset the username",
                permanent=True,
            )
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as session:
                session.ehlo()
                if smtp.starttls:
                    session.starttls(context=self._tls)
                    session.ehlo()
                if smtp.username:
                    if password is None:
                        raise DeliveryError("SMTP username set but no password", permanent=True)
                    session.login(smtp.username, password.get_secret_value())
                refused = session.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            detail = f"every recipient refused: {sorted(error.recipients)}"
            raise DeliveryError(detail, permanent=True) from None
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(f"SMTP AUTH refused ({error.smtp_code})", permanent=True) from None
        except smtplib.SMTPResponseException as error:
            detail = f"SMTP {error.smtp_code}: {error.smtp_error!r}"
            raise DeliveryError(detail, permanent=500 <= error.smtp_code < 600) from None
        if refused:
            raise DeliveryError(f"recipients refused: {sorted(refused)}", permanent=True)

    def close(self) -> None:
        """Nothing kept open."""
