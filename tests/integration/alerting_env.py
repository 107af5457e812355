"""Shared pieces of the alerting integration tests and the alerting benchmark: receivers, the
query API on loopback, an alert service in a thread, the dead-letter topic read back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, TopicPartition

from finlake.config import FinlakeSettings
from finlake.contracts.models import AlertEvent
from finlake.contracts.topics import DEAD_LETTER_SUFFIX, TopicSpec
from finlake.kafka_io import publish
from finlake.stack.kafka import create_topics
from finlake_alerting.config import Settings
from finlake_alerting.service import AlertService
from tests.receivers import SMTP_USER, wait_until

API_KEY = "alerting-test-key-0123456789"


def rule_yaml(name: str, channels: str, *, cooldown: str = "0s", extra: str = "") -> str:
    return f"""\
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {{name: {name}}}
spec:
  selector: {{pattern: ".*"}}
  condition: {{type: price_cross, direction: above, level: 200}}
  severity: critical
  channels: {channels}
  cooldown: {cooldown}
  labels: {{team: desk}}
{extra}"""


def make_topic(settings: FinlakeSettings, name: str, partitions: int = 3) -> None:
    week = 7 * 24 * 3600 * 1000
    create_topics(
        settings.kafka.bootstrap,
        [TopicSpec(name, partitions, week, "event_id", "alert_event"),
         TopicSpec(name + DEAD_LETTER_SUFFIX, 1, week, "event_id", None)],
    )  # fmt: skip


def produce(settings: FinlakeSettings, topic: str, events: Sequence[AlertEvent]) -> None:
    result = publish(settings, topic, events, key_field="event_id")
    assert result.delivered == len(events), result.errors


def alerting_settings(
    stack: FinlakeSettings, home: Path, topic: str, rules: Path, *, smtp_port: int, ca_file: Path,
    dashboard_url: str, slack_url: str, **service: Any,
) -> Settings:  # fmt: skip
    base = stack.model_dump(exclude={"home"})
    return Settings.model_validate(
        {
            **base,
            "home": home,
            "alerting": {
                "topic": topic, "group_id": f"alerting-{topic}", "rule_paths": [rules],
                "backoff_initial_s": 0.05, "backoff_max_s": 0.2, "max_attempts": 3,
                "smtp": {"port": smtp_port, "username": SMTP_USER, "ca_file": ca_file,
                         "rate_limit": "1000/second"},
                "slack": {"webhook_url": slack_url, "rate_limit": "1000/second"},
                "dashboard": {"url": dashboard_url, "api_key": API_KEY,
                              "rate_limit": "1000/second"},
                **service,
            },
        }
    )  # fmt: skip


@contextmanager
def query_api(
    home: Path, port: int, *, kafka_bootstrap: str | None = None, **api: Any
) -> Iterator[str]:
    """The query API (its alert feed) on loopback over an empty lake; ``api`` overrides its
    settings, ``kafka_bootstrap`` is the Kafka its live feed uses (``live_feed="kafka"``)."""
    from finlake_query_api.main import create_app
    from finlake_query_api.server import build_server
    from tests.unit.finlake_query_api.conftest import api_settings

    settings = api_settings(
        home, **{"api_keys": [API_KEY], "publisher_keys": [API_KEY], "keepalive_s": 0.5, **api}
    )
    if kafka_bootstrap is not None:
        kafka = settings.kafka.model_copy(update={"bootstrap_servers": kafka_bootstrap})
        settings = settings.model_copy(update={"kafka": kafka})
    server = build_server(create_app(settings), "127.0.0.1", port, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 60, "the query API")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def feed(base: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/v1/alerts", params={"limit": 500},
                         headers={"X-API-Key": API_KEY}, timeout=10)  # fmt: skip
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()["alerts"]
    return alerts


@contextmanager
def running(service: AlertService) -> Iterator[AlertService]:
    """The service's consume loop in a thread; stopped (cleanly) on exit."""
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    wait_until(lambda: service.is_consuming, 60, "the alert service to consume")
    try:
        yield service
    finally:
        service.stopping.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the alert service did not stop"


def dead_letters(settings: FinlakeSettings, topic: str, count: int, timeout_s: float = 30) -> list[
    tuple[str, dict[str, str], bytes]
]:  # fmt: skip
    """The first ``count`` records of the topic's dead-letter topic: key, headers, value."""
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap,
                         "group.id": f"dlq-reader-{time.monotonic_ns()}",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(topic + DEAD_LETTER_SUFFIX, 0, 0)])
    records: list[tuple[str, dict[str, str], bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            headers = {k: (v or b"").decode() for k, v in message.headers() or []}
            records.append(((message.key() or b"").decode(), headers, message.value() or b""))
    finally:
        consumer.close()
    return records


def email_ids(messages: Sequence[Any]) -> list[str]:
    return [i for m in messages for i in str(m["X-Finlake-Event-Ids"]).split()]


def slack_ids(bodies: Sequence[dict[str, Any]]) -> list[str]:
    ids = []
    for body in bodies:
        context = body["blocks"][-1]["elements"][0]["text"]
        ids.extend(context.split("ids: ", 1)[1].split(", "))
    return ids
