"""An alert service without Kafka (nothing is consumed; dispatch and the tracker are driven by
hand), its channels talking to loopback receivers; and a Slack webhook on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from finlake_alerting.config import Settings
from finlake_alerting.delivery_pool import stop_pools
from finlake_alerting.service import AlertService
from tests.conftest import free_port
from tests.receivers import WebhookServer

MakeService = Callable[..., AlertService]
RULE = """\
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {{name: r}}
spec:
  selector: {{pattern: ".*"}}
  condition: {{type: price_cross, direction: above, level: 200}}
  channels: {channels}
  cooldown: 0s
"""


@pytest.fixture
def make_service(tmp_path: Path, webhook: Callable[..., WebhookServer]) -> Iterator[MakeService]:
    """``make_service(channels, **alerting)``: rule ``r`` (every symbol) with these channels,
    its delivery pools started (and stopped before the webhooks)."""
    del webhook  # requested only to be torn down after the service
    made: list[AlertService] = []

    def make(channels: str, **alerting: Any) -> AlertService:
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULE.format(channels=channels))
        defaults = {
            "rule_paths": [rules], "backoff_initial_s": 0.05, "backoff_max_s": 0.2,
            "slack": {"rate_limit": "1000/second"}, "dashboard": {"rate_limit": "1000/second"},
        }  # fmt: skip
        settings = Settings.model_validate(
            {
                "home": tmp_path / "home",
                # Nothing listens there: a dead letter would fail, and no test makes one.
                "kafka": {"bootstrap_servers": f"127.0.0.1:{free_port()}"},
                "alerting": {**defaults, **alerting},
            }
        )
        service = AlertService(settings)
        made.append(service)
        for pool in service.pools.values():
            pool.start()
        return service

    yield make
    for service in made:
        stop_pools(service.pools.values(), 0)
        service.dead_letters.close()
        service.store.close()


@pytest.fixture
def webhook() -> Iterator[Callable[..., WebhookServer]]:
    """``webhook(status=...)``: a started Slack webhook on loopback, stopped after the test."""
    servers: list[WebhookServer] = []

    def start(**options: Any) -> WebhookServer:
        server = WebhookServer(free_port(), **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
