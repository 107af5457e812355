"""One delivery worker per target: a Slack webhook that keeps failing holds up only its own
alerts (two real webhooks on loopback, the service's real senders and workers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from finlake.contracts.alert_rule import ChannelType, secret_env_name
from finlake.contracts.models import AlertEvent
from finlake_alerting.delivery_pool import stop_pools
from finlake_alerting.service import AlertService
from finlake_alerting.store import FINAL
from tests.receivers import WebhookServer, wait_until
from tests.unit.finlake_alerting.conftest import MakeService
from tests.unit.finlake_alerting.events import alert

Webhook = Callable[..., WebhookServer]
FAILING, HEALTHY = "slack:slack/failing", "slack:slack/healthy"
# The failing webhook comes first: one queue for all of Slack would put its jobs ahead.
CHANNELS = (
    "[{type: slack, secretRef: {name: slack, key: failing}}, "
    "{type: slack, secretRef: {name: slack, key: healthy}}]"
)


def delivered_ids(server: WebhookServer) -> list[str]:
    """Event ids of the messages the webhook accepted, in the order they arrived."""
    return [
        event_id
        for body in server.bodies()
        for event_id in body["blocks"][-1]["elements"][0]["text"].split("ids: ")[1].split(", ")
    ]


def two_webhooks(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch, failing_up: threading.Event
) -> tuple[WebhookServer, WebhookServer]:
    """A webhook answering 500 slowly until ``failing_up`` is set, and a healthy one."""

    def failing_status(_: dict[str, Any]) -> int:
        if failing_up.is_set():
            return 200
        time.sleep(0.2)
        return 500

    failing, healthy = webhook(status=failing_status), webhook()
    monkeypatch.setenv(secret_env_name("slack", "failing"), failing.url)
    monkeypatch.setenv(secret_env_name("slack", "healthy"), healthy.url)
    return failing, healthy


def dispatch(service: AlertService, events: list[AlertEvent]) -> None:
    for offset, event in enumerate(events):
        service.tracker.track(0, offset, service.dispatch(event, b"x", ("alerts", 0, offset)))


def test_a_failing_webhook_holds_up_only_its_own_alerts(
    make_service: MakeService, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_up = threading.Event()
    failing, healthy = two_webhooks(webhook, monkeypatch, failing_up)
    service = make_service(CHANNELS, max_attempts=50)
    events = [alert(n, rule="r") for n in range(3)]
    ids = [event.event_id for event in events]
    dispatch(service, events)

    def healthy_done() -> bool:  # the service's bookkeeping, after the webhook's answer
        service._drain_done()
        return all((event_id, HEALTHY) not in service._in_flight for event_id in ids)

    wait_until(healthy_done, 20, "the healthy webhook's alerts")
    assert delivered_ids(healthy) == ids, "in order, each once"
    # Meanwhile the failing webhook was tried and is still being retried: no alert got through,
    # and the commit stays at the first record (each record waits for its failing delivery).
    assert failing.requests >= 1
    assert failing.bodies() == []
    assert all((event_id, FAILING) in service._in_flight for event_id in ids)
    assert service.tracker.committable() == {0: 0}
    assert set(service.status()["queued"]) == {"dashboard", "email", "slack"}

    failing_up.set()

    def committable() -> dict[int, int]:
        service._drain_done()
        return service.tracker.committable()

    wait_until(lambda: committable() == {0: 3}, 20, "the failing webhook's alerts once it recovers")
    assert delivered_ids(failing) == ids, "in order, each once"
    assert delivered_ids(healthy) == ids
    assert service.status()["queued"]["slack"] == 0


def test_stopping_ends_every_targets_worker_and_leaves_the_undelivered_for_the_next_run(
    make_service: MakeService, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing, _ = two_webhooks(webhook, monkeypatch, threading.Event())
    service = make_service(CHANNELS, max_attempts=50)
    event = alert(0, rule="r")
    dispatch(service, [event])
    wait_until(
        lambda: (
            service.store.statuses(event.event_id).get(HEALTHY) in FINAL and failing.requests >= 2
        ),
        20,
        "both webhooks",
    )

    stop_pools(service.pools.values(), time.monotonic() + 0.5)

    workers = [worker for pool in service.pools.values() for worker in pool.workers()]
    assert sorted(worker.key for worker in workers) == [FAILING, HEALTHY]
    assert not any(worker.is_alive for worker in workers)
    statuses = service.store.statuses(event.event_id)
    assert statuses[HEALTHY] in FINAL
    assert statuses[FAILING] not in FINAL, "left for the next run to deliver"
    service._drain_done()
    assert service.tracker.committable() == {0: 0}, "the next run reads the record again"


ONE_WEBHOOK = "[{type: slack, secretRef: {name: slack, key: healthy}}]"


def one_webhook(webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> WebhookServer:
    server = webhook()
    monkeypatch.setenv(secret_env_name("slack", "healthy"), server.url)
    return server


def delivery_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == f"deliver-{HEALTHY}"]


def test_an_idle_targets_worker_ends_and_its_next_alert_starts_another(
    make_service: MakeService, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recipients come and go with the alerts' labels: a thread per target ever seen would pile
    up in a service that runs for months."""
    server = one_webhook(webhook, monkeypatch)
    service = make_service(ONE_WEBHOOK, worker_idle_s=0.3)
    first, second = alert(0, rule="r"), alert(1, rule="r")
    dispatch(service, [first])
    wait_until(lambda: delivered_ids(server) == [first.event_id], 20, "the first alert")
    pool = service.pools[ChannelType.SLACK]
    wait_until(lambda: not pool.workers() and not delivery_threads(), 20, "the idle worker's end")

    dispatch(service, [second])
    wait_until(lambda: delivered_ids(server) == [first.event_id, second.event_id], 20, "the next")
    assert [worker.key for worker in pool.workers()] == [HEALTHY]


def test_a_targets_rate_window_outlives_its_idle_worker(
    make_service: MakeService, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = one_webhook(webhook, monkeypatch)
    service = make_service(ONE_WEBHOOK, worker_idle_s=0.2, slack={"rate_limit": "1/minute"})
    first, second = alert(0, rule="r"), alert(1, rule="r")
    dispatch(service, [first])
    wait_until(lambda: delivered_ids(server) == [first.event_id], 20, "the first alert")
    pool = service.pools[ChannelType.SLACK]
    wait_until(lambda: not pool.workers(), 20, "the idle worker's end")

    service.tracker.track(0, 1, service.dispatch(second, b"x", ("alerts", 0, 1)))
    wait_until(lambda: [w.key for w in pool.workers()] == [HEALTHY], 20, "a new worker")
    time.sleep(1.0)  # long enough for a worker with a fresh window to send
    assert delivered_ids(server) == [first.event_id], "one message a minute, whichever worker"
    assert service.store.statuses(second.event_id).get(HEALTHY) is None, "not even tried"


def test_alerts_arriving_as_the_worker_retires_are_all_delivered_once(
    make_service: MakeService, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alerts a worker's idle wait (0.2 s per poll of its queue) apart: each may come just as
    the worker decides to end, which must neither lose it nor send it twice."""
    server = one_webhook(webhook, monkeypatch)
    service = make_service(ONE_WEBHOOK, worker_idle_s=0.001)
    events = [alert(n, rule="r") for n in range(24)]
    for offset, event in enumerate(events):
        service.tracker.track(0, offset, service.dispatch(event, b"x", ("alerts", 0, offset)))
        time.sleep(0.17 + 0.01 * (offset % 7))
    ids = [event.event_id for event in events]
    wait_until(lambda: len(delivered_ids(server)) >= len(ids), 20, "every alert")
    time.sleep(0.5)
    assert delivered_ids(server) == ids, "in order, each once"
