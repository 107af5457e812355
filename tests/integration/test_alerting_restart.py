"""`finlake alerts serve` killed (SIGKILL) mid-stream and started again sends no email or Slack
message twice: the delivery log skips what went out, and a send cut off mid-way is dead-lettered
as in doubt instead of being repeated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from finlake.config import FinlakeSettings
from finlake_alerting.service import IN_DOUBT
from tests.conftest import free_port
from tests.integration.alerting_env import (
    API_KEY,
    dead_letters,
    email_ids,
    make_topic,
    produce,
    query_api,
    rule_yaml,
    slack_ids,
)  # fmt: skip
from tests.receivers import SMTP_PASSWORD, SMTP_USER, SmtpServer, WebhookServer, wait_until
from tests.unit.finlake_alerting.events import alert

EVENTS = 40


def _slow(_: object) -> int:
    time.sleep(0.05)  # keeps the stream in flight long enough to be killed in the middle
    return 200


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[tuple[SmtpServer, WebhookServer, str]]:
    smtp = SmtpServer(free_port(), tmp_path).start()
    slack = WebhookServer(free_port(), status=_slow).start()
    with query_api(tmp_path / "api", free_port()) as dashboard:
        yield smtp, slack, dashboard
    slack.stop()
    smtp.stop()


def _serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "finlake.cli.main", "alerts", "serve"],
            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    def ready() -> bool:
        assert process.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 90, "the alert service to be ready")


def test_killed_and_restarted_service_sends_nothing_twice(
    settings: FinlakeSettings, tmp_path: Path,
    receivers: tuple[SmtpServer, WebhookServer, str],
) -> None:  # fmt: skip
    smtp, slack, dashboard = receivers
    topic = "alerts-restart"
    make_topic(settings, topic)
    rules = tmp_path / "rules.yaml"
    channels = "[{type: email, to: [ops@example.com], secretRef: {name: smtp}}, " \
        "{type: slack, secretRef: {name: desk}}, {type: dashboard}]"  # fmt: skip
    rules.write_text(rule_yaml("restart", channels))
    port = free_port()
    env = {
        "FINLAKE_HOME": str(tmp_path / "home"),
        "FINLAKE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap,
        "FINLAKE_REGISTRY__URL": settings.registry.ccompat_url,
        "FINLAKE_ALERTING__TOPIC": topic,
        "FINLAKE_ALERTING__RULE_PATHS": json.dumps([str(rules)]),
        "FINLAKE_ALERTING__PORT": str(port),
        "FINLAKE_ALERTING__GROUP_MAX": "1",
        "FINLAKE_ALERTING__SMTP__PORT": str(smtp.port),
        "FINLAKE_ALERTING__SMTP__USERNAME": SMTP_USER,
        "FINLAKE_ALERTING__SMTP__CA_FILE": str(smtp.ca_file),
        "FINLAKE_ALERTING__SMTP__RATE_LIMIT": "1000/second",
        "FINLAKE_ALERTING__SLACK__RATE_LIMIT": "1000/second",
        "FINLAKE_ALERTING__DASHBOARD__URL": dashboard,
        "FINLAKE_ALERTING__DASHBOARD__API_KEY": API_KEY,
        "FINLAKE_SECRET_SMTP_PASSWORD": SMTP_PASSWORD,
        "FINLAKE_SECRET_DESK_WEBHOOK_URL": slack.url,
    }
    log = tmp_path / "serve.log"
    events = [alert(n, rule="restart", symbol=f"K{n}") for n in range(EVENTS)]
    ids = {e.event_id for e in events}
    first = _serve(env, log)
    try:
        _wait_ready(port, first, log)
        produce(settings, topic, events)
        wait_until(lambda: len(slack.bodies()) >= 10, 60, "the stream to be under way")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert len(slack_ids(slack.bodies())) < EVENTS, "the kill came too late to test anything"

    second = _serve(env, log)
    try:
        _wait_ready(port, second, log)

        def accounted() -> bool:
            in_doubt = {k for k, h, _ in dead_letters(settings, topic, EVENTS, 1)
                        if h["finlake.reason"] == IN_DOUBT}  # fmt: skip
            return (
                ids <= set(email_ids(smtp.messages())) | in_doubt
                and ids <= set(slack_ids(slack.bodies())) | in_doubt
            )

        wait_until(accounted, 120, "every event delivered or dead-lettered")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    finally:
        if second.poll() is None:
            second.kill()
    emails, posts = Counter(email_ids(smtp.messages())), Counter(slack_ids(slack.bodies()))
    assert [i for i, n in emails.items() if n > 1] == []
    assert [i for i, n in posts.items() if n > 1] == []
    letters = dead_letters(settings, topic, EVENTS, 2)
    assert all(h["finlake.reason"] == IN_DOUBT for _, h, _ in letters)
    assert len(letters) <= 2  # at most the one send per channel cut off by the kill
    assert "stopped" in log.read_text()
    assert SMTP_PASSWORD not in log.read_text()
    assert slack.url not in log.read_text()
