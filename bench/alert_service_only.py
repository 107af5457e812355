"""Alerts, service only: alert events produced straight to a topic (``fired_at`` = produce time)
while the alert service runs in-process (dashboard channel too); produced -> email and -> Slack
received, p50/p99. Section 2 of ``bench_alerts.py``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer

from bench.alert_harness import arrivals, line, verdict
from finlake.config import FinlakeSettings
from finlake.contracts.models import AlertEvent
from finlake.contracts.serde import ContractSerializer, registry_client
from finlake.kafka_io import producer_config
from finlake_alerting.service import AlertService
from tests.conftest import free_port
from tests.integration.alerting_env import (
    alerting_settings,
    email_ids,
    make_topic,
    produce,
    query_api,
    rule_yaml,
    running,
    slack_ids,
)
from tests.receivers import SMTP_PASSWORD, SMTP_USER, SmtpServer, WebhookServer, wait_until
from tests.unit.finlake_alerting.events import alert

CHANNELS = "[{type: email, to: [ops@example.com]}, {type: slack}, {type: dashboard}]"


# -- 2: the alert service alone ----------------------------------------------------------------


@dataclass
class ServiceOnly:
    alerts: int
    email: list[float]
    slack: list[float]
    messages: int


def service_only(args: argparse.Namespace, root: Path, settings: FinlakeSettings,
                 smtp: SmtpServer, slack: WebhookServer) -> ServiceOnly:  # fmt: skip
    topic = "alerts-bench"
    rules = root / "service-rules.yaml"
    rules.write_text(rule_yaml("bench", CHANNELS))
    make_topic(settings, topic)
    mails_before = len(smtp.messages())
    with query_api(root / "api", free_port()) as dashboard:
        config = alerting_settings(
            settings, root / "home", topic, rules, smtp_port=smtp.port,
            ca_file=smtp.ca_file, dashboard_url=dashboard, slack_url=slack.url,
            smtp={"port": smtp.port, "username": SMTP_USER, "password": SMTP_PASSWORD,
                  "ca_file": smtp.ca_file, "rate_limit": "1000/second"},
        )  # fmt: skip
        service = AlertService(config)
        with running(service):
            produce(settings, topic, [alert(0, rule="bench", symbol="WARMUP")])
            wait_until(lambda: len(smtp.messages()) > mails_before, 60, "warm-up email")
            # One producer for the run, as the detection job has: a producer (and a schema
            # registration) per alert would put their start-up inside the measured time.
            producer = Producer(producer_config(settings))
            serialize = ContractSerializer(registry_client(settings.registry), topic, AlertEvent)
            produced: dict[str, float] = {}
            for n in range(args.alerts):
                event = alert(n, rule="bench", symbol=f"B{n % 50}", fired_at=datetime.now(UTC))
                payload = serialize(event)
                produced[event.event_id] = time.time()
                producer.produce(topic, payload, event.event_id.encode())
                producer.poll(0)
                time.sleep(max(0.0, 1 / args.service_rate - 0.001))
            if producer.flush(30):
                raise SystemExit("service only: alert events not delivered to Kafka")
            ids = set(produced)
            wait_until(lambda: ids <= set(email_ids(smtp.messages())), 300, "emails")
            wait_until(lambda: ids <= set(slack_ids(slack.bodies())), 300, "slack")
            mails = arrivals(smtp.received.snapshot(),
                             lambda items: email_ids([m for _, m in items]))  # fmt: skip
            posts = arrivals(slack.received.snapshot(), slack_ids)
            messages = len(smtp.messages()) - mails_before - 1
    return ServiceOnly(
        args.alerts, [mails[i] - produced[i] for i in produced],
        [posts[i] - produced[i] for i in produced], messages,
    )  # fmt: skip


def report_service(result: ServiceOnly, mail_peer: list[float], hook_peer: list[float],
                   args: argparse.Namespace) -> bool:  # fmt: skip
    print(
        "\n== 2. alert service only: alert event produced -> receivers "
        "(in-process, dashboard channel too) =="
    )
    print(f"alerts: {result.alerts} at {args.service_rate:g}/s -> {result.messages} emails")
    print(line("alert produced -> email received:", result.email))
    print(line("alert produced -> slack received:", result.slack))
    return verdict(result.email, result.slack, mail_peer, hook_peer)
