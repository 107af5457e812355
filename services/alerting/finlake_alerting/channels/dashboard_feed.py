"""The dashboard: events posted to the query API, which pushes them to its live feed (SSE)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from finlake.contracts.models import AlertEvent
from finlake_alerting.channels import DeliveryError
from finlake_alerting.channels.content import dashboard_item
from finlake_alerting.config import DashboardSettings
from finlake_alerting.credentials import MissingSecretError, channel_secret
from finlake_alerting.routing import Target

EVENTS_PATH = "/v1/alerts/events"


class DashboardSender:
    """POSTs batches to ``/v1/alerts/events``; the endpoint ignores ids it has already shown.

    The API key is the channel's (its ``secretRef``), else the service's
    (``FINLAKE_ALERTING__DASHBOARD__API_KEY``, which the operator sets on every rule's service
    from the chart's ``alerting.dashboard.apiKeySecret``). Thread-safe: an ``httpx.Client`` "can be
    shared between threads" (its docstring)."""

    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self._client = httpx.Client(base_url=settings.url, timeout=settings.timeout_s)

    def send(self, events: Sequence[AlertEvent], target: Target) -> None:
        """Post the events; 4xx (but 408/429) is permanent."""
        try:
            key = channel_secret(target.channel, self.settings.api_key)
        except MissingSecretError as error:
            raise DeliveryError(str(error), permanent=True) from None
        headers = {"X-API-Key": key.get_secret_value()} if key is not None else {}
        response = self._client.post(
            EVENTS_PATH, json={"events": [dashboard_item(e) for e in events]}, headers=headers
        )
        if response.is_success:
            return
        code = response.status_code
        permanent = 400 <= code < 500 and code not in (408, 429)
        detail = f"query API answered {code}: {response.text[:200]}"
        raise DeliveryError(detail, permanent=permanent)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
