"""Alerts: alert event produced -> email received and -> Slack webhook received, p50/p99 over a
few hundred alerts, against a bare smtplib send (STARTTLS + AUTH) and a bare webhook POST to the
same receivers, measured in the same run.

Starts its own stack (Kafka + Apicurio) in a temp home, a real SMTP server (aiosmtpd, STARTTLS +
AUTH), a loopback webhook server in place of Slack and the query API for the dashboard channel,
then runs the alert service in-process. Events are produced at ``--rate`` per second with
``fired_at`` = the produce time; the latency of one alert is its arrival at the receiver minus
that. (When the detection job exists, a pattern tick -> alert adds its trigger interval.)
Goal: p99 <= 1 s for both channels.

    uv run --frozen python bench/bench_alerts.py [--alerts 300] [--rate 50]
"""

from __future__ import annotations

import argparse
import smtplib
import ssl
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

import httpx

from finlake.stack.manager import Stack
from finlake_alerting.channels.mailer import build_email
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
)  # fmt: skip
from tests.integration.conftest import stack_settings
from tests.receivers import SMTP_PASSWORD, SMTP_USER, SmtpServer, WebhookServer, wait_until
from tests.unit.finlake_alerting.events import alert

CHANNELS = "[{type: email, to: [ops@example.com]}, {type: slack}, {type: dashboard}]"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(int(len(ordered) * 0.99) - 1, 0)] * 1000


def arrivals(received: list[tuple[float, object]], ids_of: object) -> dict[str, float]:
    first: dict[str, float] = {}
    for at, item in received:
        for event_id in ids_of([item]):  # type: ignore[operator]
            first.setdefault(event_id, at)
    return first


def peer(smtp: SmtpServer, slack: WebhookServer, count: int) -> tuple[list[float], list[float]]:
    """A bare smtplib send and a bare webhook POST per alert, sequentially."""
    context = ssl.create_default_context(cafile=str(smtp.ca_file))
    mail, hook = [], []
    with httpx.Client(timeout=10) as client:
        for n in range(count):
            event = alert(n, rule="peer", symbol="PEER")
            message = build_email([event], "finlake@localhost", ["ops@example.com"])
            started = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as session:
                session.starttls(context=context)
                session.login(SMTP_USER, SMTP_PASSWORD)
                session.send_message(message)
            mail.append(time.perf_counter() - started)
            started = time.perf_counter()
            client.post(slack.url, json={"text": event.message}).raise_for_status()
            hook.append(time.perf_counter() - started)
    return mail, hook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0, help="alerts per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        root = Path(tmp)
        stack = Stack(stack_settings(root / "stack"))
        smtp = SmtpServer(free_port(), root).start()
        slack = WebhookServer(free_port()).start()
        try:
            stack.up()
            settings = stack.settings
            rules = root / "rules.yaml"
            rules.write_text(rule_yaml("bench", CHANNELS))
            make_topic(settings, "alerts-bench")
            with query_api(root / "api", free_port()) as dashboard:
                config = alerting_settings(
                    settings, root / "home", "alerts-bench", rules, smtp_port=smtp.port,
                    ca_file=smtp.ca_file, dashboard_url=dashboard, slack_url=slack.url,
                    smtp={"port": smtp.port, "username": SMTP_USER, "password": SMTP_PASSWORD,
                          "ca_file": smtp.ca_file, "rate_limit": "1000/second"},
                )  # fmt: skip
                service = AlertService(config)
                with running(service):
                    produce(settings, "alerts-bench", [alert(0, rule="bench", symbol="WARMUP")])
                    wait_until(lambda: len(smtp.messages()) >= 1, 60, "warm-up email")
                    produced: dict[str, float] = {}
                    for n in range(args.alerts):
                        now = datetime.now(UTC)
                        event = alert(n, rule="bench", symbol=f"B{n % 50}", fired_at=now)
                        produced[event.event_id] = now.timestamp()
                        produce(settings, "alerts-bench", [event])
                        time.sleep(max(0.0, 1 / args.rate - 0.001))
                    ids = set(produced)
                    wait_until(lambda: ids <= set(email_ids(smtp.messages())), 300, "emails")
                    wait_until(lambda: ids <= set(slack_ids(slack.bodies())), 300, "slack")
                    mails = arrivals(smtp.received.snapshot(),
                                     lambda items: email_ids([m for _, m in items]))  # fmt: skip
                    posts = arrivals(slack.received.snapshot(), slack_ids)
                    messages = len(smtp.messages()) - 1
            mail_peer, hook_peer = peer(smtp, slack, min(args.alerts, 200))
        finally:
            slack.stop()
            smtp.stop()
            stack.down()
    email_lat = [mails[i] - produced[i] for i in produced]
    slack_lat = [posts[i] - produced[i] for i in produced]
    e50, e99 = percentiles(email_lat)
    s50, s99 = percentiles(slack_lat)
    pm50, pm99 = percentiles(mail_peer)
    ph50, ph99 = percentiles(hook_peer)
    print(f"alerts: {args.alerts} at {args.rate:.0f}/s -> {messages} emails")
    print(f"produced -> email received:  p50 {e50:7.1f} ms  p99 {e99:7.1f} ms")
    print(f"produced -> slack received:  p50 {s50:7.1f} ms  p99 {s99:7.1f} ms")
    print(f"peer: bare smtplib send:     p50 {pm50:7.1f} ms  p99 {pm99:7.1f} ms")
    print(f"peer: bare webhook POST:     p50 {ph50:7.1f} ms  p99 {ph99:7.1f} ms")
    print(f"ratio p99 service/peer: email {e99 / pm99:.1f}x, slack {s99 / ph99:.1f}x")
    ok = e99 <= 1000 and s99 <= 1000
    print(f"goal p99 <= 1000 ms: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
