"""The producer: Avro in the contract via the registry, idempotent, keyed by symbol, counted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from finlake.config import FinlakeSettings
from finlake.contracts.models import MarketTick
from finlake.contracts.serde import ContractSerializer, registry_client
from finlake.errors import RegistryError
from finlake.kafka_io import producer_config
from finlake_ingestion.encoding import MarketTickEncoder
from finlake_ingestion.metrics import IngestionMetrics
from finlake_ingestion.sources.base import Batch, Headers

log = logging.getLogger(__name__)
_POLL_EVERY = 1000  # serve delivery reports every so many produce() calls
_CHUNK = 1000  # records per produce_batch() call
_QUEUE_LIMIT = 500_000  # records waiting in librdkafka's queue (queue.buffering.max.messages)
_MAX_ERRORS_KEPT = 20


@dataclass
class DeliveryStats:
    """Delivery reports counted so far, with the first few error messages."""

    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class TickPublisher:
    """Publishes batches of ticks to one topic and counts every delivery report."""

    def __init__(
        self,
        settings: FinlakeSettings,
        metrics: IngestionMetrics,
        *,
        topic: str,
        source: str,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.source = source
        self.stats = DeliveryStats()
        # Registering through the core serializer sets BACKWARD and yields the schema id.
        try:
            client = registry_client(settings.registry)
            schema_id = ContractSerializer(client, topic, MarketTick).schema_id
        except Exception as error:  # the registry client raises transport and HTTP errors alike
            raise RegistryError(
                f"registering the market_tick contract at {settings.registry.ccompat_url} "
                f"failed: {error}"
            ) from error
        self.encode = MarketTickEncoder(schema_id)
        conf = producer_config(settings) | {"queue.buffering.max.messages": _QUEUE_LIMIT}
        self._producer = Producer(conf | (overrides or {}))
        self._produced = metrics.produced.labels(source)
        self._failed = metrics.failed.labels(source)
        self._latency = metrics.delivery_latency.labels(source)
        self._last_batch = metrics.last_poll.labels(source)
        self._since_poll = 0
        self._delivered = 0
        self._latencies: list[float] = []

    def publish(self, batch: Batch) -> None:
        """Hand every tick of ``batch`` to the producer; confirm it after a flush if asked."""
        if batch.ticks:  # not the empty keep-alive batches of a backoff or a paused replay
            self._last_batch.set(time.time())
        if batch.confirm is not None:
            delivered: list[MarketTick] = []
            for tick, headers in zip(batch.ticks, self._headers(batch), strict=True):
                self._produce(tick, self._tracking(tick, delivered), headers)
            self.flush()
            batch.confirm(delivered)
            return
        if batch.headers is not None:
            for tick, headers in zip(batch.ticks, batch.headers, strict=True):
                self._produce(tick, self._on_delivery, headers)
            return
        # The hot path (replay, simulate): no headers, no per-message closures, and produce_batch,
        # which takes a chunk in one call (about a third cheaper per record than produce()).
        for start in range(0, len(batch.ticks), _CHUNK):
            self._produce_chunk(batch.ticks[start : start + _CHUNK])

    def _produce_chunk(self, ticks: Sequence[MarketTick]) -> None:
        encode = self.encode
        messages: list[dict[str, Any]] = [
            {"value": encode(tick), "key": tick.symbol.encode()} for tick in ticks
        ]
        # Make room first: a full queue would reject part of the chunk and break per-key order.
        while len(self._producer) + len(messages) > _QUEUE_LIMIT:
            self._producer.poll(0.05)
            self._record()
        queued = self._producer.produce_batch(self.topic, messages, on_delivery=self._on_delivery)
        if queued < len(messages):
            for tick, message in zip(ticks, messages, strict=True):
                error = message.get("_error")
                if error is None:
                    continue
                if error.code() == KafkaError._QUEUE_FULL:
                    self._produce(tick, self._on_delivery, None)
                else:
                    self._on_delivery(error, None)
        self.poll()

    @staticmethod
    def _headers(batch: Batch) -> Sequence[Headers | None]:
        return batch.headers if batch.headers is not None else [None] * len(batch.ticks)

    def _produce(
        self,
        tick: MarketTick,
        on_delivery: Callable[[KafkaError | None, Message], None],
        headers: Headers | None,
    ) -> None:
        value, key = self.encode(tick), tick.symbol.encode()
        while True:
            try:
                if headers:
                    self._producer.produce(
                        self.topic, value, key, on_delivery=on_delivery, headers=headers
                    )
                else:
                    self._producer.produce(self.topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self._producer.poll(0.1)
        self._since_poll += 1
        if self._since_poll >= _POLL_EVERY:
            self.poll()

    def _tracking(
        self, tick: MarketTick, delivered: list[MarketTick]
    ) -> Callable[[KafkaError | None, Message], None]:
        def report(error: KafkaError | None, message: Message) -> None:
            self._on_delivery(error, message)
            if error is None:
                delivered.append(tick)

        return report

    def _on_delivery(self, error: KafkaError | None, message: Message | None) -> None:
        # Called once per record: keep it to plain counting; metrics are updated in bulk.
        if error is None and message is not None:
            self._delivered += 1
            latency = message.latency()
            if latency is not None:
                self._latencies.append(latency)
            return
        self.stats.failed += 1
        self._failed.inc()
        if len(self.stats.errors) < _MAX_ERRORS_KEPT:
            self.stats.errors.append(str(error))
        log.warning("delivery failed", extra={"topic": self.topic, "error": str(error)})

    def _record(self) -> None:
        if self._delivered:
            self.stats.delivered += self._delivered
            self._produced.inc(self._delivered)
            self._delivered = 0
        if self._latencies:
            latencies, self._latencies = self._latencies, []
            self._latency.observe_many(latencies)

    def poll(self) -> None:
        """Serve pending delivery reports without waiting, and update the metrics."""
        self._since_poll = 0
        self._producer.poll(0)
        self._record()

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for every delivery report; return how many are still outstanding."""
        remaining = int(self._producer.flush(timeout_s))
        self._record()
        return remaining

    def is_connected(self, timeout_s: float = 2.0) -> bool:
        """Whether the broker answers a metadata request for the topic."""
        try:
            return self.topic in self._producer.list_topics(self.topic, timeout=timeout_s).topics
        except Exception:  # any client error means "not reachable right now"
            return False
