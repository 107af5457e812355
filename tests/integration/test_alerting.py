"""The alert service against real Kafka + Apicurio, a real SMTP server (aiosmtpd: STARTTLS +
AUTH), a loopback HTTP server as Slack's webhook and the real query API's live feed."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from finlake.config import FinlakeSettings
from finlake_alerting.dead_letters import DeadLetterError
from finlake_alerting.delivery_pool import stop_pools
from finlake_alerting.service import AlertService
from finlake_alerting.store import Status
from finlake_alerting.worker import start_http
from tests.conftest import free_port
from tests.integration.alerting_env import (
    alerting_settings,
    dead_letters,
    email_ids,
    feed,
    make_topic,
    produce,
    query_api,
    rule_yaml,
    running,
    slack_ids,
)  # fmt: skip
from tests.receivers import SMTP_PASSWORD, SmtpServer, WebhookServer, wait_until
from tests.unit.finlake_alerting.events import alert

CHANNELS = "[{type: email, to: [ops@example.com], secretRef: {name: smtp}}, {type: slack}, " \
    "{type: dashboard}]"  # fmt: skip


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), tmp_path_factory.mktemp("smtp")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slack() -> Iterator[WebhookServer]:
    server = WebhookServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with query_api(tmp_path_factory.mktemp("api-home"), free_port()) as base:
        yield base


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch, slack: WebhookServer) -> None:
    monkeypatch.setenv("FINLAKE_SECRET_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("FINLAKE_SLACK_TEST_URL", slack.url)


def _service(
    settings: FinlakeSettings, tmp_path: Path, smtp: SmtpServer, dashboard: str, rules: str,
    **service: Any,
) -> AlertService:  # fmt: skip
    topic = f"alerts-{tmp_path.name}"[:200]
    make_topic(settings, topic)
    path = tmp_path / "rules.yaml"
    path.write_text(rules)
    config = alerting_settings(
        settings, tmp_path / "home", topic, path, smtp_port=smtp.port, ca_file=smtp.ca_file,
        dashboard_url=dashboard, slack_url=os.environ["FINLAKE_SLACK_TEST_URL"], **service,
    )  # fmt: skip
    return AlertService(config)


def test_each_event_is_delivered_once_to_every_channel_with_its_content(
    settings: FinlakeSettings, tmp_path: Path, smtp: SmtpServer, slack: WebhookServer,
    dashboard: str,
) -> None:  # fmt: skip
    service = _service(settings, tmp_path, smtp, dashboard, rule_yaml("breakout", CHANNELS),
                       group_max=1)  # fmt: skip
    events = [alert(n, rule="breakout", symbol=f"S{n}") for n in range(6)]
    ids = {e.event_id for e in events}
    before_mail, before_slack = len(smtp.messages()), len(slack.bodies())
    with running(service):
        produce(settings, service.settings.alerting.topic, events)
        wait_until(lambda: ids <= set(email_ids(smtp.messages()[before_mail:])), 60, "emails")
        wait_until(lambda: ids <= set(slack_ids(slack.bodies()[before_slack:])), 60, "slack")
        wait_until(lambda: ids <= {a["event_id"] for a in feed(dashboard)}, 60, "dashboard")
        wait_until(lambda: service.tracker.committable() == {}, 30, "offsets committed")
    mails, bodies = smtp.messages()[before_mail:], slack.bodies()[before_slack:]
    assert Counter(email_ids(mails)) == Counter(ids)
    assert Counter(slack_ids(bodies)) == Counter(ids)
    one = next(m for m in mails if m["X-Finlake-Event-Ids"] == "breakout-S0-0")
    assert one["Subject"] == "[CRITICAL] breakout: S0 price_cross 201.5 (threshold 200)"
    assert one["To"] == "ops@example.com"
    text = one.get_body(("plain",)).get_content()
    html = one.get_body(("html",)).get_content()
    assert "S0 crossed above 200 at 201.5" in text
    assert "Threshold: 200" in text
    assert "<h2>CRITICAL: breakout on S0</h2>" in html
    assert all(b["blocks"][0]["type"] == "header" for b in bodies)
    shown = next(a for a in feed(dashboard) if a["event_id"] == "breakout-S0-0")
    assert shown["message"] == "S0 crossed above 200 at 201.5"
    assert shown["type"] == "alert"
    sent = service.metrics.sent
    assert {c: sent.labels(c)._value.get() for c in ("email", "slack", "dashboard")} == {
        "email": 6, "slack": 6, "dashboard": 6,
    }  # fmt: skip


def test_a_failing_channel_retries_then_dead_letters_while_the_others_deliver(
    settings: FinlakeSettings, tmp_path: Path, smtp: SmtpServer, dashboard: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    broken = WebhookServer(free_port(), status=lambda _: 500).start()
    monkeypatch.setenv("FINLAKE_SECRET_BROKEN_WEBHOOK_URL", broken.url)
    channels = "[{type: slack, secretRef: {name: broken}}, {type: email, to: [ops@example.com], " \
        "secretRef: {name: smtp}}, {type: dashboard}]"  # fmt: skip
    service = _service(settings, tmp_path, smtp, dashboard, rule_yaml("flaky", channels),
                       group_max=1)  # fmt: skip
    events = [alert(n, rule="flaky", symbol=f"F{n}") for n in range(3)]
    ids = {e.event_id for e in events}
    try:
        with running(service):
            produce(settings, service.settings.alerting.topic, events)
            wait_until(lambda: ids <= set(email_ids(smtp.messages())), 60, "emails")
            wait_until(lambda: ids <= {a["event_id"] for a in feed(dashboard)}, 60, "dashboard")
            letters = dead_letters(settings, service.settings.alerting.topic, 3, timeout_s=60)
            wait_until(lambda: service.tracker.committable() == {}, 30, "offsets committed")
    finally:
        broken.stop()
    assert broken.requests == 3 * 3  # max_attempts per event
    assert {key for key, _, _ in letters} == ids
    for _, headers, value in letters:
        assert headers["finlake.channel"] == "slack:broken"
        assert headers["finlake.attempts"] == "3"
        assert "webhook answered 500" in headers["finlake.reason"]
        assert broken.url not in headers["finlake.reason"]
        assert value[0] == 0  # the original Avro record (Confluent wire format), replayable
    assert service.metrics.retried.labels("slack")._value.get() == 6
    assert service.metrics.dead_lettered.labels("slack")._value.get() == 3


def test_a_dead_letter_refused_part_way_through_a_group_leaves_the_others_final(
    settings: FinlakeSettings, tmp_path: Path, smtp: SmtpServer, dashboard: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Kafka refuses the second dead letter of a two-event group once: the first stays
    dead-lettered, only the second is tried again; each is on the dead-letter topic once."""
    broken = WebhookServer(free_port(), status=lambda _: 500).start()
    monkeypatch.setenv("FINLAKE_SECRET_BROKEN_WEBHOOK_URL", broken.url)
    rules = rule_yaml("grouped", "[{type: slack, secretRef: {name: broken}}]")
    service = _service(settings, tmp_path, smtp, dashboard, rules)
    send, calls = service.dead_letters.send, Counter[str]()

    def refused_once(key: str, *args: Any, **kwargs: Any) -> None:
        calls["sent"] += 1
        if calls["sent"] == 2:  # a broker hiccup, as the real producer reports one
            raise DeadLetterError(f"dead letter for {key} not acknowledged: timeout")
        send(key, *args, **kwargs)

    monkeypatch.setattr(service.dead_letters, "send", refused_once)
    events = [alert(n, rule="grouped", symbol="G") for n in range(2)]
    for offset, event in enumerate(events):  # both queued before the worker takes the first
        service.tracker.track(0, offset, service.dispatch(event, b"x", ("t", 0, offset)))
    try:
        for pool in service.pools.values():
            pool.start()
        topic = service.settings.alerting.topic
        wait_until(lambda: len(dead_letters(settings, topic, 2, timeout_s=1)) == 2, 60, "letters")
        letters = dead_letters(settings, topic, 3, timeout_s=5)
    finally:
        stop_pools(service.pools.values(), time.monotonic() + 10)
        broken.stop()
    assert sorted(key for key, _, _ in letters) == sorted(e.event_id for e in events)
    assert broken.requests == 3 + 3  # the group's attempts, then the second event's alone
    for event in events:
        assert set(service.store.statuses(event.event_id).values()) == {Status.DEAD_LETTERED}


def test_silences_and_cooldown_suppress_and_a_silence_expiring_is_announced(
    settings: FinlakeSettings, tmp_path: Path, smtp: SmtpServer, dashboard: str,
) -> None:  # fmt: skip
    channels = "[{type: email, to: [desk@example.com], secretRef: {name: smtp}}, " \
        "{type: dashboard}]"  # fmt: skip
    rules = rule_yaml("cool", channels, cooldown="10m")
    service = _service(settings, tmp_path, smtp, dashboard, rules, silence_check_s=0.2)
    topic = service.settings.alerting.topic
    port = free_port()
    server, thread = start_http(service, "127.0.0.1", port)
    api = f"http://127.0.0.1:{port}/api/v1/silences"
    first = alert(0, rule="cool", symbol="AAPL")
    cooled = alert(3, rule="cool", symbol="AAPL")  # 3 min after the first: within 10m
    after = alert(11, rule="cool", symbol="AAPL")  # 11 min after: notified again
    silenced = alert(0, rule="cool", symbol="MSFT")
    unsilenced = alert(1, rule="cool", symbol="MSFT")
    try:
        with running(service):
            request = {"matchers": [{"name": "symbol", "value": "MSFT"}], "duration": "1h",
                       "comment": "maintenance"}  # fmt: skip
            created = httpx.post(api, json=request, timeout=10)
            assert created.status_code == 201, created.text
            silence = created.json()
            assert silence["status"] == "active"
            produce(settings, topic, [first, silenced])
            wait_until(lambda: "cool-AAPL-0" in email_ids(smtp.messages()), 60, "first email")
            produce(settings, topic, [cooled])
            wait_until(lambda: service.store.decision(cooled.event_id) is not None, 30, "cooled")
            assert service.store.decision(cooled.event_id).suppressed_by == "cooldown"  # type: ignore[union-attr]
            listed = httpx.get(api, params={"state": "active"}, timeout=10).json()
            assert [s["id"] for s in listed] == [silence["id"]]
            assert listed[0]["suppressed"] == 1
            expired = httpx.delete(f"{api}/{silence['id']}", timeout=10).json()
            assert expired["status"] == "expired"
            notice = f"silence-{silence['id']}-expired"
            wait_until(lambda: notice in {a["event_id"] for a in feed(dashboard)}, 30, "notice")
            produce(settings, topic, [unsilenced, after])
            wait_until(lambda: {"cool-MSFT-1", "cool-AAPL-11"} <= set(email_ids(smtp.messages())),
                       60, "emails after the silence")  # fmt: skip
            sent_email = service.metrics.sent.labels("email")
            wait_until(lambda: sent_email._value.get() == 3, 30, "the email metric")
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    sent = [i for i in email_ids(smtp.messages()) if i.startswith("cool-")]
    assert sorted(sent) == ["cool-AAPL-0", "cool-AAPL-11", "cool-MSFT-1"]
    shown = next(a for a in feed(dashboard) if a["event_id"] == notice)
    assert shown["type"] == "silence_expired"
    assert 'symbol="MSFT"' in shown["message"]
    assert "1 alert(s)" in shown["message"]
    assert 'finlake_alerts_suppressed_total{reason="silence"} 1.0' in metrics
    assert 'finlake_alerts_suppressed_total{reason="cooldown"} 1.0' in metrics
    assert re.search(r'finlake_alerts_sent_total\{channel="email"\} 3\.0', metrics)
