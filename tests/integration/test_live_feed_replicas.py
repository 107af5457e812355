"""The dashboard's live feed with several query API replicas: an alert posted to any replica
(the Service picks one) streams from every replica, through the Kafka topic alerts.feed."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewPartitions

from finlake.config import FinlakeSettings
from finlake.contracts.topics import ALERT_FEED, TopicSpec
from finlake.stack.kafka import create_topics
from finlake_query_api.alert_feed import AlertFeed, AlertItem
from finlake_query_api.feed_relay import KafkaFeedRelay
from tests.conftest import free_port
from tests.integration.alerting_env import API_KEY, feed, query_api
from tests.receivers import wait_until

HEADERS = {"X-API-Key": API_KEY}


def alert(event_id: str) -> dict[str, object]:
    return {
        "event_id": event_id, "rule": "aapl-breakout", "kind": "price_cross", "symbol": "AAPL",
        "severity": "critical", "window_start": "2026-03-02T14:30:00Z",
        "window_end": "2026-03-02T14:31:00Z", "fired_at": "2026-03-02T14:31:00Z",
        "value": 201.5, "threshold": 200.0, "message": f"AAPL crossed above 200 ({event_id})",
    }  # fmt: skip


def post(base: str, *event_ids: str) -> httpx.Response:
    events = [alert(event_id) for event_id in event_ids]
    return httpx.post(f"{base}/v1/alerts/events", json={"events": events}, headers=HEADERS,
                      timeout=30)  # fmt: skip


@contextmanager
def streamed(base: str, expected: set[str]) -> Iterator[list[str]]:
    """The event ids a dashboard's stream on ``base`` receives, until every expected one came."""
    received: list[str] = []
    ready = threading.Event()

    def read() -> None:
        url = f"{base}/v1/alerts/stream"
        with httpx.stream("GET", url, headers=HEADERS, timeout=60) as response:
            for line in response.iter_lines():
                if line == "event: ready":
                    ready.set()
                elif line.startswith("id: "):
                    received.append(line.removeprefix("id: "))
                    if expected <= set(received):
                        return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(30), "the stream did not open"
    yield received
    reader.join(timeout=30)


def test_an_alert_posted_to_one_replica_streams_from_every_replica(
    settings: FinlakeSettings, tmp_path: Path
) -> None:
    first, second, third = (f"feed-{uuid.uuid4().hex[:8]}-{n}" for n in range(3))
    bootstrap = settings.kafka.bootstrap
    with (
        query_api(tmp_path / "a", free_port(), kafka_bootstrap=bootstrap, live_feed="kafka") as a,
        query_api(tmp_path / "b", free_port(), kafka_bootstrap=bootstrap, live_feed="kafka") as b,
        streamed(b, {first, second, third}) as on_b,
    ):
        answer = post(a, first, second)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"accepted": 2, "duplicates": 0}
        wait_until(lambda: {first, second} <= set(on_b), 30, "replica b to stream a's alerts")
        # Replica b knows them now: the alert service's retry through b shows nothing twice.
        assert post(b, first).json() == {"accepted": 0, "duplicates": 1}
        # A record that is no alert event is skipped; the feed goes on.
        producer = Producer({"bootstrap.servers": bootstrap})
        producer.produce(ALERT_FEED, b"\x00not json", b"junk")
        assert producer.flush(10) == 0
        assert post(a, third).json() == {"accepted": 1, "duplicates": 0}
        wait_until(lambda: third in on_b, 30, "replica b to stream the alert after the junk")
    assert on_b == [first, second, third]  # each once, in order
    # A replica that starts later (a scale-up, a restart) lists the recent alerts too.
    with query_api(tmp_path / "c", free_port(), kafka_bootstrap=bootstrap, live_feed="kafka") as c:
        wait_until(
            lambda: {first, second, third} <= {item["event_id"] for item in feed(c)},
            30, "the new replica's recent alerts",
        )  # fmt: skip


def test_a_post_the_feed_topic_does_not_take_is_a_503_the_alert_service_retries(
    tmp_path: Path,
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    with query_api(tmp_path / "a", free_port(), kafka_bootstrap=nowhere, live_feed="kafka") as a:
        answer = post(a, "never-shown")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["detail"] == "the live feed did not take the events"
        assert answer.headers["retry-after"] == "5"
        assert feed(a) == []


def test_a_partition_added_to_the_feed_topic_is_read_by_a_running_replica(
    settings: FinlakeSettings,
) -> None:
    """Operators add partitions to a busy topic; a replica that was running before must read
    the new one too (its events are newer than the replica's start: they stream)."""
    topic = f"feed-grows-{uuid.uuid4().hex[:8]}"
    create_topics(settings.kafka.bootstrap, [TopicSpec(topic, 1, 3_600_000, "event_id", None)])
    shown = AlertFeed()

    async def run() -> list[str]:
        relay = KafkaFeedRelay(settings, shown, topic=topic, refresh_s=0.5)
        relay.start()
        stream = shown.subscribe()
        try:
            await asyncio.sleep(2)  # assigned the topic's one partition
            admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
            admin.create_partitions([NewPartitions(topic, 2)])[topic].result(30)
            producer = Producer({"bootstrap.servers": settings.kafka.bootstrap})
            item = AlertItem.model_validate(alert("in-the-new-partition"))
            producer.produce(topic, item.model_dump_json().encode(), b"k", partition=1)
            assert producer.flush(10) == 0
            received = await asyncio.wait_for(stream.get(), 30)
            return [received.event_id] if received is not None else []
        finally:
            await relay.stop()

    assert asyncio.run(run()) == ["in-the-new-partition"]
    assert [item.event_id for item in shown.recent(10)] == ["in-the-new-partition"]
