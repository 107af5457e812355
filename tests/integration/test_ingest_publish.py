"""Ingestion sources publishing through the real broker and registry, read back by a consumer."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from finlake.config import FinlakeSettings
from finlake.contracts.models import MarketTick
from finlake.contracts.serde import ContractDeserializer, ContractSerializer, registry_client
from finlake.contracts.topics import TopicSpec
from finlake.simulate import random_walk_ticks
from finlake.stack.kafka import create_topics
from finlake_ingestion.config import IngestionSettings
from finlake_ingestion.encoding import MarketTickEncoder
from finlake_ingestion.metrics import IngestionMetrics
from finlake_ingestion.publisher import TickPublisher
from finlake_ingestion.service import execute
from finlake_ingestion.sources.base import Batch
from finlake_ingestion.sources.replay import ReplaySource
from finlake_ingestion.sources.simulate import SimulateSource
from finlake_ingestion.sources.yahoo import YahooSource
from finlake_ingestion.worker import RunReport
from finlake_ingestion.yahoo_client import YahooClient
from tests.unit.finlake_ingestion.fake_yahoo import SESSION_OPEN, FakeClock, FakeYahoo

T0 = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
Record = tuple[MarketTick, dict[str, bytes]]


def fresh_topic(settings: FinlakeSettings, partitions: int = 3) -> str:
    name = f"ingest-test-{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(name, partitions, 3_600_000, key="symbol", contract="market_tick")
    assert create_topics(settings.kafka.bootstrap, [spec]) == [name]
    return name


def ingestion_settings(settings: FinlakeSettings, topic: str) -> IngestionSettings:
    return IngestionSettings.model_validate(settings.model_dump() | {"ingestion": {"topic": topic}})


def consume_topic(
    settings: FinlakeSettings, topic: str, *, expect: int, timeout_s: float = 30
) -> list[Record]:
    """Every record of ``topic`` (waiting for ``expect`` of them), decoded, with its headers."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap,
            "group.id": f"ingest-test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    decode = ContractDeserializer(registry_client(settings.registry), topic, MarketTick)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Record] = []
        idle_polls = 0
        deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
        # Keep reading a little after the expected count, so extra records would be seen too.
        while datetime.now(UTC) < deadline and (len(records) < expect or idle_polls < 2):
            message = consumer.poll(0.5)
            if message is None:
                idle_polls += 1
                continue
            assert message.error() is None, message.error()
            headers = {k: v for k, v in message.headers() or [] if v is not None}
            records.append((decode(message.value()), headers))
            assert message.key() == records[-1][0].symbol.encode()
    finally:
        consumer.close()
    return records


def test_encoder_bytes_equal_the_registry_serializer(settings: FinlakeSettings) -> None:
    topic = fresh_topic(settings)
    reference = ContractSerializer(registry_client(settings.registry), topic, MarketTick)
    encode = MarketTickEncoder(reference.schema_id)
    ticks = list(random_walk_ticks(["AAPL", "BRK-B"], count=50, seed=3, start=T0))
    ticks.append(ticks[0].model_copy(update={"price": None, "volume": None, "currency": None}))
    assert [encode(t) for t in ticks] == [reference(t) for t in ticks]


def test_replay_publishes_every_row_as_is(settings: FinlakeSettings, tmp_path: Path) -> None:
    topic = fresh_topic(settings)
    path = tmp_path / "ticks.csv"
    path.write_text(
        "symbol,timestamp,price,volume,currency,exchange,bid\n"
        "AAPL,2026-11-24T14:30:00Z,234.5,100,USD,XNAS,234.4\n"
        "AAPL,2026-11-24T14:30:01.250Z,,,USD,XNAS,\n"
        "MSFT,1795530600000,-1.0,0,,,\n"
        "MSFT,2026-11-24T09:30:02-05:00,472.25,300,USD,XNAS,472.2\n"
    )
    metrics = IngestionMetrics()
    report = execute(
        ingestion_settings(settings, topic),
        lambda m, _: ReplaySource(path, m),
        serve=False,
        metrics=metrics,
    )
    assert (report.sent, report.delivered, report.failed) == (4, 4, 0)
    records = consume_topic(settings, topic, expect=4)
    by_key = {(t.symbol, t.timestamp): (t, h) for t, h in records}
    assert len(records) == len(by_key) == 4
    first, headers = by_key[("AAPL", T0)]
    assert (first.price, first.volume, first.currency, first.source) == (
        234.5,
        100,
        "USD",
        "replay",
    )
    assert headers == {"finlake.extra.bid": b"234.4"}
    nulls, _ = by_key[("AAPL", T0 + timedelta(seconds=1, milliseconds=250))]
    assert (nulls.price, nulls.volume) == (None, None)
    negative, no_headers = by_key[("MSFT", T0)]
    assert (negative.price, negative.volume, negative.currency) == (-1.0, 0, None)
    assert no_headers == {}
    produced = metrics.registry.get_sample_value(
        "finlake_ingestion_records_produced_total", {"source": "replay"}
    )
    assert produced == 4
    latency = metrics.registry.get_sample_value(
        "finlake_ingestion_delivery_latency_seconds_count", {"source": "replay"}
    )
    assert latency == 4


def test_simulate_publishes_the_seeded_walk(settings: FinlakeSettings) -> None:
    topic = fresh_topic(settings)
    symbols = ("AAPL", "MSFT", "NVDA")
    step = timedelta(minutes=1)
    report = execute(
        ingestion_settings(settings, topic),
        lambda _m, _: SimulateSource(
            symbols, rate=0, seed=7, count=40, start=T0, event_interval=step
        ),
        serve=False,
    )
    assert (report.delivered, report.failed) == (120, 0)
    got = sorted(
        (t.symbol, t.timestamp, t.price) for t, _ in consume_topic(settings, topic, expect=120)
    )
    want = sorted(
        (t.symbol, t.timestamp, t.price)
        for t in random_walk_ticks(symbols, count=40, seed=7, start=T0, interval=step)
    )
    assert got == want


def test_yahoo_polls_publish_each_bar_once(settings: FinlakeSettings, tmp_path: Path) -> None:
    topic = fresh_topic(settings)
    clock = FakeClock(SESSION_OPEN + timedelta(minutes=10, seconds=1))
    metrics = IngestionMetrics()
    publisher = TickPublisher(settings, metrics, topic=topic, source="yahoo")
    with FakeYahoo(clock) as yahoo:
        client = YahooClient(interval="1m", prepost=False, timeout_s=5, session=yahoo.session())
        source = YahooSource(
            ingestion_settings(settings, topic).yahoo.model_copy(
                update={"symbols": ("AAPL", "MSFT")}
            ),
            client,
            metrics,
            state_file=tmp_path / "state.json",
            clock=clock,
            monotonic=clock.monotonic,
        )
        for _ in range(3):
            publisher.publish(Batch(source.poll(), confirm=source.confirm))
            clock.advance(30)
    records = consume_topic(settings, topic, expect=21)
    keys = [(t.symbol, t.timestamp) for t, _ in records]
    # The last poll is at 14:41:01: AAPL bars 0..10, MSFT the same but minute 7 (no trade).
    assert len(keys) == len(set(keys)) == 21
    assert {t.source for t, _ in records} == {"yahoo"}
    assert publisher.stats.failed == 0


def test_failed_deliveries_are_counted(settings: FinlakeSettings) -> None:
    metrics = IngestionMetrics()
    publisher = TickPublisher(
        settings,
        metrics,
        topic=f"missing-{uuid.uuid4().hex[:8]}",  # auto-creation is off: nothing can be delivered
        source="replay",
        overrides={"delivery.timeout.ms": 2000},
    )
    ticks = list(random_walk_ticks(["AAPL"], count=3, seed=1, start=T0))
    publisher.publish(Batch(ticks))
    assert publisher.flush(20) == 0
    assert (publisher.stats.delivered, publisher.stats.failed) == (0, 3)
    assert (
        metrics.registry.get_sample_value(
            "finlake_ingestion_records_failed_total", {"source": "replay"}
        )
        == 3
    )
    assert publisher.stats.errors


def test_stop_event_ends_an_endless_run_with_everything_flushed(settings: FinlakeSettings) -> None:
    topic = fresh_topic(settings)
    stop = threading.Event()
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    report = execute(
        ingestion_settings(settings, topic),
        lambda _m, _: SimulateSource(("AAPL", "MSFT"), rate=500, seed=1),
        serve=False,
        stop=stop,
    )
    timer.join()
    assert report.stopped
    assert report.undelivered == 0
    assert report.delivered == report.sent > 0
    assert len(consume_topic(settings, topic, expect=report.sent)) == report.sent


def test_the_service_holds_after_its_replay_file_until_stopped(
    settings: FinlakeSettings, tmp_path: Path
) -> None:
    """As a Deployment's container the service must not exit when its file is done: Kubernetes
    would start it again and it would publish the file again, every restart."""
    topic = fresh_topic(settings)
    path = tmp_path / "ticks.csv"
    path.write_text("symbol,timestamp,price,volume\nAAPL,2026-11-24T14:30:00Z,234.5,100\n")
    metrics, stop = IngestionMetrics(), threading.Event()
    reports: list[RunReport] = []
    options = ingestion_settings(settings, topic)
    options = options.model_copy(
        update={"ingestion": options.ingestion.model_copy(update={"http_port": 0})}
    )
    service = threading.Thread(
        target=lambda: reports.append(
            execute(options, lambda m, _: ReplaySource(path, m), serve=True, stop=stop,
                    metrics=metrics, hold=True)
        )
    )  # fmt: skip
    service.start()
    try:
        assert len(consume_topic(settings, topic, expect=1)) == 1
        service.join(2.0)
        assert service.is_alive(), "the service ended with its file"
    finally:
        stop.set()
        service.join(30)
    assert not service.is_alive()
    assert [(r.sent, r.delivered, r.stopped) for r in reports] == [(1, 1, False)]
