"""Slack through an incoming webhook (slack-sdk's WebhookClient) with a Block Kit message."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from slack_sdk.webhook import WebhookClient

from finlake.contracts.models import AlertEvent
from finlake_alerting.channels import DeliveryError
from finlake_alerting.channels.content import slack_blocks, subject
from finlake_alerting.config import SlackSettings
from finlake_alerting.credentials import MissingSecretError, channel_secret
from finlake_alerting.routing import Target

# slack_sdk logs request URLs (the webhook URL is the secret) at DEBUG: keep it quiet.
_quiet = logging.getLogger("finlake_alerting.slack_sdk")
_quiet.setLevel(logging.WARNING)


class SlackSender:
    """One WebhookClient per webhook; retries are the service's (tenacity), not the SDK's.

    Thread-safe: a WebhookClient keeps no connection (one urllib request per send), and the
    lock guards the map of clients the workers of several webhooks fill."""

    def __init__(self, settings: SlackSettings) -> None:
        self.settings = settings
        self._clients: dict[str, WebhookClient] = {}
        self._lock = threading.Lock()

    def _client(self, target: Target) -> WebhookClient:
        secret = channel_secret(target.channel, self.settings.webhook_url)
        if secret is None:
            raise MissingSecretError("slack channel: no webhook URL configured")
        url = secret.get_secret_value()
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = WebhookClient(
                    url, timeout=int(max(1, self.settings.timeout_s)), logger=_quiet,
                    retry_handlers=[],
                )  # fmt: skip
                self._clients[url] = client
        return client

    def send(self, events: Sequence[AlertEvent], target: Target) -> None:
        """Post one message; 4xx (but 429) is permanent, anything else is retried."""
        try:
            client = self._client(target)
        except MissingSecretError as error:
            raise DeliveryError(str(error), permanent=True) from None
        response = client.send(text=subject(events), blocks=slack_blocks(events))
        if response.status_code == 200:
            return
        permanent = 400 <= response.status_code < 500 and response.status_code != 429
        body = (response.body or "")[:200]
        raise DeliveryError(f"webhook answered {response.status_code}: {body}", permanent=permanent)

    def close(self) -> None:
        """Drop the clients."""
        with self._lock:
            self._clients.clear()
