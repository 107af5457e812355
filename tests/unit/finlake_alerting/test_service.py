"""The alert service's dispatch, offset tracking and announcements, its channels talking to
webhooks on loopback (no Kafka: records are handed to dispatch and the tracker by hand)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from finlake.contracts.alert_rule import secret_env_name
from finlake_alerting.silences import Matcher, SilenceCreate
from finlake_alerting.store import StateStore
from tests.receivers import WebhookServer, wait_until
from tests.unit.finlake_alerting.conftest import MakeService
from tests.unit.finlake_alerting.events import alert

Webhook = Callable[..., WebhookServer]


def test_two_keys_of_one_secret_are_two_webhooks_and_both_get_the_alert(
    make_service: MakeService, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops, dev = webhook(), webhook()
    monkeypatch.setenv(secret_env_name("slack", "ops-webhook"), ops.url)
    monkeypatch.setenv(secret_env_name("slack", "dev-webhook"), dev.url)
    service = make_service(
        "[{type: slack, secretRef: {name: slack, key: ops-webhook}}, "
        "{type: slack, secretRef: {name: slack, key: dev-webhook}}]"
    )
    assert service.dispatch(alert(0, rule="r"), b"x", ("alerts", 0, 0)) == 2
    wait_until(lambda: bool(ops.bodies() and dev.bodies()), 10, "both webhooks")
    assert len(ops.bodies()) == len(dev.bodies()) == 1


def test_a_record_read_again_after_a_rebalance_waits_for_its_deliveries_still_in_flight(
    make_service: MakeService, webhook: Webhook
) -> None:
    slack_up, dashboard_up = threading.Event(), threading.Event()
    slack = webhook(status=lambda _: 200 if slack_up.is_set() else 503)
    api = webhook(status=lambda _: 200 if dashboard_up.is_set() else 503)  # the query API
    service = make_service(
        "[{type: slack}, {type: dashboard}]", max_attempts=50,
        slack={"webhook_url": slack.url, "rate_limit": "1000/second"},
        dashboard={"url": api.url.split("/services/")[0], "rate_limit": "1000/second"},
    )  # fmt: skip
    event = alert(0, rule="r")
    service.tracker.track(0, 5, service.dispatch(event, b"x", ("alerts", 0, 5)))
    wait_until(lambda: slack.requests >= 2 and api.requests >= 2, 10, "retries of both")
    assert service.tracker.committable() == {0: 5}
    service.tracker.committed({0: 5})
    # Partition 0 is revoked and assigned back to this consumer, which reads offset 5 again.
    service.forget_partitions([0])
    service.tracker.track(0, 5, service.dispatch(event, b"x", ("alerts", 0, 5)))

    def committable() -> dict[int, int]:
        service._drain_done()
        return service.tracker.committable()

    assert committable() == {0: 5}, "commits past deliveries still in flight"
    slack_up.set()

    def slack_finished() -> bool:
        service._drain_done()
        return (event.event_id, "slack:default") not in service._in_flight

    wait_until(slack_finished, 10, "the Slack delivery")
    # Its completion counted once for offset 5 (not once per read of it): the dashboard's waits.
    assert committable() == {0: 5}, "commits past the dashboard delivery still in flight"
    dashboard_up.set()
    wait_until(lambda: committable() == {0: 6}, 10, "offset 5 to be committable once delivered")
    assert (len(slack.bodies()), len(api.bodies())) == (1, 1)


def test_a_silence_expiry_counts_as_announced_only_once_its_notice_is_delivered(
    make_service: MakeService, webhook: Webhook
) -> None:
    dashboard_up = threading.Event()
    api = webhook(status=lambda _: 200 if dashboard_up.is_set() else 503)  # the query API
    base_url = api.url.split("/services/")[0]
    service = make_service(
        "[{type: dashboard}]", max_attempts=50,
        dashboard={"url": base_url, "rate_limit": "1000/second"},
    )  # fmt: skip
    now = datetime.now(UTC)
    matchers = [Matcher(name="symbol", value="AAPL")]
    silence = service.add_silence(
        SilenceCreate(matchers=matchers, ends_at=now + timedelta(milliseconds=200))
    )
    time.sleep(0.3)
    service.announce_expired_silences()
    wait_until(lambda: api.requests >= 2, 10, "the notice to be retried")
    service.announce_expired_silences()  # still in flight: not queued a second time

    def unannounced() -> list[str]:
        service._drain_done()
        # What a restarted service would find in the state file.
        restarted = StateStore(service.settings.state_db)
        try:
            return [s.id for s in restarted.unannounced_expired(datetime.now(UTC))]
        finally:
            restarted.close()

    assert unannounced() == [silence.id]
    dashboard_up.set()
    wait_until(lambda: unannounced() == [], 10, "the expiry to count as announced")
    assert [body["events"][0]["event_id"] for body in api.bodies()] == [
        f"silence-{silence.id}-expired"
    ]
