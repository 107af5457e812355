"""Publishing contract records to Kafka and reading them back, with delivery reports counted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from finlake.config import FinlakeSettings
from finlake.contracts.models import ContractModel
from finlake.contracts.serde import ContractDeserializer, ContractSerializer, registry_client
from finlake.errors import FinlakeError
from finlake.stack.kafka import CLIENT_LOGGER

ModelT = TypeVar("ModelT", bound=ContractModel)


@dataclass
class PublishResult:
    """What a publish did: counts, and the offsets written per partition."""

    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        """Delivery report callback: count and remember the offset range per partition."""
        if error is not None:
            self.failed += 1
            self.errors.append(str(error))
            return
        self.delivered += 1
        # A delivered message always has a partition and an offset; the stubs say Optional.
        partition, offset = cast(int, message.partition()), cast(int, message.offset())
        low, high = self.offsets.get(partition, (offset, offset))
        self.offsets[partition] = (min(low, offset), max(high, offset))


def producer_config(settings: FinlakeSettings) -> dict[str, Any]:
    """An idempotent producer: acks=all, ordered per key, retried by librdkafka itself."""
    return {
        "bootstrap.servers": settings.kafka.bootstrap,
        "logger": CLIENT_LOGGER,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "compression.type": "zstd",
        "delivery.timeout.ms": 30_000,
    }


def publish(
    settings: FinlakeSettings, topic: str, records: Iterable[ContractModel], *, key_field: str
) -> PublishResult:
    """Publish ``records`` keyed by ``key_field`` and wait until every delivery report is in."""
    result = PublishResult()
    producer = Producer(producer_config(settings))
    serializers: dict[type[ContractModel], ContractSerializer[Any]] = {}
    client = registry_client(settings.registry)
    for record in records:
        serializer = serializers.get(type(record))
        if serializer is None:
            serializer = serializers[type(record)] = ContractSerializer(client, topic, type(record))
        key = str(getattr(record, key_field)).encode()
        while True:
            try:
                producer.produce(topic, serializer(record), key, on_delivery=result.on_delivery)
                break
            except BufferError:
                producer.poll(0.5)
        producer.poll(0)
    remaining = producer.flush(30)
    if remaining:
        raise FinlakeError(f"{remaining} records to {topic} were still undelivered after 30 s")
    return result


def read_back(
    settings: FinlakeSettings, topic: str, model: type[ModelT], offsets: dict[int, tuple[int, int]]
) -> list[ModelT]:
    """Read exactly the offset ranges ``offsets`` of ``topic`` and decode them."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap,
            "logger": CLIENT_LOGGER,
            "group.id": "finlake-read-back",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    decode = ContractDeserializer(registry_client(settings.registry), topic, model)
    consumer.assign([TopicPartition(topic, p, low) for p, (low, _) in offsets.items()])
    pending = {partition: high for partition, (_, high) in offsets.items()}
    records: list[ModelT] = []
    try:
        while pending:
            message = consumer.poll(10)
            if message is None:
                raise FinlakeError(f"timed out reading back {topic}; still waiting on {pending}")
            if message.error() is not None:
                raise FinlakeError(f"reading {topic} failed: {message.error()}")
            # A consumed message without an error always has a partition and an offset.
            partition, offset = cast(int, message.partition()), cast(int, message.offset())
            if partition not in pending or offset > pending[partition]:
                continue
            records.append(decode(message.value()))
            if offset == pending[partition]:
                del pending[partition]
    finally:
        consumer.close()
    return records


def partition_offsets(bootstrap: str, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """Per partition of ``topic``, the offset after its last record (the high watermark)."""
    return {p: high for p, (_, high) in partition_watermarks(bootstrap, topic, timeout_s).items()}


def partition_watermarks(
    bootstrap: str, topic: str, timeout_s: float = 10.0
) -> dict[int, tuple[int, int]]:
    """Per partition of ``topic``: the offset of its oldest record Kafka still holds, and the
    offset after its last record."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "logger": CLIENT_LOGGER,
            "group.id": "finlake-offsets",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            problem = metadata.error if metadata is not None else "not found"
            raise FinlakeError(f"topic {topic} at {bootstrap}: {problem}")
        watermarks = {}
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            watermarks[partition] = (int(low), int(high))
        return watermarks
    finally:
        consumer.close()
