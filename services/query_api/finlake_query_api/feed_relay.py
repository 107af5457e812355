"""The live feed across query API replicas, through Kafka (``FINLAKE_API__LIVE_FEED=kafka``).

The alert service's dashboard channel posts to one replica behind the Service; a browser's stream
may be held by another. So the replica that takes a post writes the new events to the
``alerts.feed`` topic, and every replica reads that topic and feeds its own streams and recent
list. A replica that starts (or restarts) reads the topic's last ``RECENT`` events first, so its
recent list is the same as its peers' (those past events go to the list, not to the streams).
Partitions added to the topic later are found within ``REFRESH_S`` and read from their start. The
post is answered once Kafka has the events: a failure is a 503 within ``DELIVERY_TIMEOUT_S``
(below the alert service's request timeout), which its dashboard channel retries; an event id
already shown is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import ValidationError

from finlake.config import FinlakeSettings
from finlake.contracts.topics import ALERT_FEED
from finlake.errors import FinlakeError
from finlake.kafka_io import partition_watermarks, producer_config
from finlake.stack.kafka import CLIENT_LOGGER
from finlake_query_api.alert_feed import RECENT, Accepted, AlertFeed, AlertItem
from finlake_query_api.errors import FeedUnavailableError

log = logging.getLogger(__name__)
DELIVERY_TIMEOUT_S = 5.0
POLL_S = 0.2
RETRY_S = 2.0
REFRESH_S = 30.0


class KafkaFeedRelay:
    """Writes posted events to the feed topic; reads the topic into this replica's feed."""

    def __init__(
        self, settings: FinlakeSettings, feed: AlertFeed, *, topic: str = ALERT_FEED,
        recent: int = RECENT, refresh_s: float = REFRESH_S,
    ) -> None:  # fmt: skip
        self._feed = feed
        self._bootstrap = settings.kafka.bootstrap
        self._topic = topic
        self._recent = recent
        self._refresh_s = refresh_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Sent as soon as posted, and given up within the answer's time: the alert service waits.
        timeout_ms = int(DELIVERY_TIMEOUT_S * 1000)
        self._producer = Producer(
            {
                **producer_config(settings),
                "linger.ms": 0,
                "request.timeout.ms": timeout_ms,
                "delivery.timeout.ms": timeout_ms,
            }
        )
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka.bootstrap,
                "logger": CLIENT_LOGGER,
                # Each replica reads every event: a group of its own, no offsets committed.
                "group.id": f"finlake-query-api-feed-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 100,
            }
        )
        self._replay_ends: dict[int, int] = {}
        """Per partition, the offset after the last event there was at start: events before it
        are past ones (the recent list only), events from it on are new (the streams too)."""

    def start(self) -> None:
        """Start reading the topic on a thread of its own (from the running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="alert-feed-relay", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop reading; wait for the thread and close the clients."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        await asyncio.to_thread(self._producer.flush, DELIVERY_TIMEOUT_S)

    async def publish(self, items: Sequence[AlertItem]) -> Accepted:
        """Write the events this replica has not shown yet to the topic; answer once Kafka has
        them (FeedUnavailableError otherwise). They are shown here at once, the other replicas
        show them when they read them."""
        new: dict[str, AlertItem] = {}
        for item in items:
            if not self._feed.has(item.event_id):
                new.setdefault(item.event_id, item)
        failures: list[str] = []
        reports: list[bool] = []

        def delivered(error: KafkaError | None, _: Message) -> None:
            reports.append(error is None)
            if error is not None:
                failures.append(str(error))

        try:
            for item in new.values():
                self._producer.produce(
                    self._topic, item.model_dump_json().encode(), item.event_id.encode(),
                    on_delivery=delivered,
                )  # fmt: skip
        except (BufferError, KafkaException) as error:
            raise FeedUnavailableError(
                "the live feed did not take the events", cause=f"topic {self._topic}: {error}"
            ) from error
        # flush() waits for every request's events; this request needs only its own reports.
        await asyncio.to_thread(self._producer.flush, DELIVERY_TIMEOUT_S)
        if failures or len(reports) < len(new):
            reason = failures[0] if failures else f"{len(new) - len(reports)} events undelivered"
            raise FeedUnavailableError(
                "the live feed did not take the events", cause=f"topic {self._topic}: {reason}"
            )
        self._feed.publish(list(new.values()))
        return Accepted(accepted=len(new), duplicates=len(items) - len(new))

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and not self._assign():
                self._stop.wait(RETRY_S)
            refreshed = time.monotonic()
            while not self._stop.is_set():
                try:
                    if time.monotonic() - refreshed >= self._refresh_s:
                        refreshed = time.monotonic()
                        self._assign_added()
                    message = self._consumer.poll(POLL_S)
                    if message is not None:
                        self._take(message)
                except Exception:  # never let the thread die: the replica would go deaf
                    log.exception("live feed: reading %s failed; retrying", self._topic)
                    self._stop.wait(RETRY_S)
        finally:
            self._consumer.close()

    def _assign(self) -> bool:
        """Assign every partition of the topic from its last ``recent`` events."""
        try:
            watermarks = partition_watermarks(self._bootstrap, self._topic, timeout_s=5)
        except (FinlakeError, KafkaException) as error:
            log.warning("live feed: cannot read %s yet (%s); retrying", self._topic, error)
            return False
        self._replay_ends = {partition: high for partition, (_, high) in watermarks.items()}
        self._consumer.assign(
            [
                TopicPartition(self._topic, partition, max(low, high - self._recent))
                for partition, (low, high) in watermarks.items()
            ]
        )
        return True

    def _assign_added(self) -> None:
        """Read partitions added to the topic since the start from their first event: every
        event there is newer than the start, so each one goes to the streams too."""
        metadata = self._consumer.list_topics(self._topic, timeout=5).topics.get(self._topic)
        if metadata is None or metadata.error is not None:
            return
        added = sorted(set(metadata.partitions) - set(self._replay_ends))
        if added:
            log.info("live feed: %s has new partitions %s; reading them", self._topic, added)
            self._replay_ends.update(dict.fromkeys(added, 0))
            self._consumer.incremental_assign(
                [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in added]
            )

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("live feed: reading %s failed: %s", self._topic, error)
            return
        try:
            item = AlertItem.model_validate_json(cast(bytes, message.value()))
        except ValidationError as invalid:
            log.warning(
                "live feed: skipped a record at %s[%s]@%s that is no alert event: %s",
                self._topic, message.partition(), message.offset(), invalid.errors()[:1],
            )  # fmt: skip
            return
        past = cast(int, message.offset()) < self._replay_ends.get(
            cast(int, message.partition()), 0
        )
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        publish = functools.partial(self._feed.publish, [item], notify=not past)
        with contextlib.suppress(RuntimeError):  # the loop closed while stopping
            loop.call_soon_threadsafe(publish)
