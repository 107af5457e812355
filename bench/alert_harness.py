"""What the alert benchmarks share: percentiles and arrival times, the peer (a bare smtplib send
and a bare webhook POST) and the verdict against it, the bench's own consumer of the alerts topic
and a tick producer that paces simulated ticks as the ingestion service sends them.
"""

from __future__ import annotations

import math
import random
import smtplib
import ssl
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer

from bench.processes import Proc
from finlake.config import FinlakeSettings
from finlake.contracts.models import AlertEvent, MarketTick
from finlake.contracts.serde import ContractDeserializer, ContractSerializer, registry_client
from finlake.kafka_io import producer_config
from finlake.stack.kafka import CLIENT_LOGGER
from finlake_alerting.channels.mailer import build_email
from tests.receivers import SMTP_PASSWORD, SMTP_USER, SmtpServer, WebhookServer
from tests.unit.finlake_alerting.events import alert

GOAL_MS = 1000.0


# -- helpers ---------------------------------------------------------------------------------


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 in ms of samples in seconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[
        max(math.ceil(len(ordered) * 0.99) - 1, 0)
    ] * 1000


def arrivals(
    received: list[tuple[float, object]], ids_of: Callable[[list[Any]], list[str]]
) -> dict[str, float]:
    """Event id -> when its first message arrived."""
    first: dict[str, float] = {}
    for at, item in received:
        for event_id in ids_of([item]):
            first.setdefault(event_id, at)
    return first


def line(label: str, samples: Sequence[float]) -> str:
    p50, p99 = percentiles(samples)
    return f"{label:<36} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"


def finlake(*args: str) -> list[str]:
    return [sys.executable, "-m", "finlake.cli.main", *args]


def alive(process: Proc, log: Path, what: str) -> Callable[[], None]:
    def check() -> None:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited {process.returncode}:\n{log.read_text()[-4000:]}")

    return check


def wait_for(
    check: Callable[[], bool], timeout_s: float, what: str, *guards: Callable[[], None]
) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        for guard in guards:
            guard()
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


# -- the peer ----------------------------------------------------------------------------------


def peer(smtp: SmtpServer, slack: WebhookServer, count: int) -> tuple[list[float], list[float]]:
    """A bare smtplib send and a bare webhook POST per alert, sequentially."""
    context = ssl.create_default_context(cafile=str(smtp.ca_file))
    mail, hook = [], []
    with httpx.Client(timeout=10) as client:
        for n in range(count):
            event = alert(n, rule="peer", symbol="PEER")
            message = build_email([event], "finlake@localhost", ["ops@example.com"])
            started_at = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as session:
                session.starttls(context=context)
                session.login(SMTP_USER, SMTP_PASSWORD)
                session.send_message(message)
            mail.append(time.perf_counter() - started_at)
            started_at = time.perf_counter()
            client.post(slack.url, json={"text": event.message}).raise_for_status()
            hook.append(time.perf_counter() - started_at)
    return mail, hook


def verdict(email: list[float], posts: list[float], mail_peer: list[float],
            hook_peer: list[float]) -> bool:  # fmt: skip
    e99, s99 = percentiles(email)[1], percentiles(posts)[1]
    print(
        f"ratio p99 / peer p99: email {e99 / percentiles(mail_peer)[1]:.1f}x, "
        f"slack {s99 / percentiles(hook_peer)[1]:.1f}x"
    )
    ok = e99 <= GOAL_MS and s99 <= GOAL_MS
    print(
        f"goal p99 <= {GOAL_MS:.0f} ms: {'met' if ok else 'MISSED'} "
        f"(email {e99:.0f} ms, slack {s99:.0f} ms)"
    )
    return ok


# -- ticks in, alerts out ----------------------------------------------------------------------


@dataclass
class OnTopic:
    """What the bench's own consumer saw on the alerts topic."""

    events: dict[str, AlertEvent] = field(default_factory=dict)  # event id -> event
    created: dict[str, float] = field(default_factory=dict)  # event id -> Kafka create time (s)
    by_key: dict[str, list[str]] = field(default_factory=dict)  # "rule/symbol" -> event ids
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def watching(settings: FinlakeSettings, topic: str) -> Iterator[OnTopic]:
    """Read ``topic`` from the start in a thread while the block runs."""
    seen, stopping = OnTopic(), threading.Event()
    decode = ContractDeserializer(registry_client(settings.registry), topic, AlertEvent)
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap, "logger": CLIENT_LOGGER,
                         "group.id": f"bench-watch-{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])

    def loop() -> None:
        while not stopping.is_set():
            message = consumer.poll(0.1)
            if message is None or message.error() is not None:
                continue
            event = decode(message.value())
            _, created_ms = message.timestamp()
            with seen.lock:
                seen.events[event.event_id] = event
                seen.created[event.event_id] = created_ms / 1000
                key = f"{event.rule}/{event.symbol}"
                seen.by_key.setdefault(key, []).append(event.event_id)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stopping.set()
        thread.join(10)
        consumer.close()


class TickProducer:
    """Ticks to the market-data topic as the ingestion service sends them (Avro, key symbol)."""

    def __init__(self, settings: FinlakeSettings, topic: str) -> None:
        self.topic = topic
        self.producer = Producer(producer_config(settings))
        self.serialize = ContractSerializer(registry_client(settings.registry), topic, MarketTick)
        self.failed = 0

    def _report(self, error: object, _message: object) -> None:
        if error is not None:
            self.failed += 1

    def send(self, tick: MarketTick) -> float:
        """Produce one tick; the wall time of the produce call."""
        value = self.serialize(tick)
        at = time.time()
        self.producer.produce(self.topic, value, tick.symbol.encode(), on_delivery=self._report)
        self.producer.poll(0)
        return at

    def flush(self) -> None:
        if self.producer.flush(30) or self.failed:
            raise SystemExit(f"{self.failed} ticks not delivered to {self.topic}")


def tick(symbol: str, price: float) -> MarketTick:
    now = datetime.now(UTC)
    return MarketTick(symbol=symbol, timestamp=now, price=price, volume=100, currency="USD",
                      exchange="XNAS", source="simulate", produced_at=now)  # fmt: skip


def pace(
    ticks: Iterator[MarketTick], producer: TickProducer, symbols: int, steps: int,
    interval: float, patterns: dict[int, dict[str, str]],
) -> dict[str, float]:  # fmt: skip
    """Send ``steps`` x ``symbols`` ticks, each symbol once per interval, spread evenly over it
    in a shuffled order, with event time = wall time; the produce time of each pattern tick
    (``patterns``: step -> symbol -> the "rule/symbol" key its crossing fires)."""
    produced: dict[str, float] = {}
    began = time.monotonic()
    for step in range(steps):
        batch = list(islice(ticks, symbols))
        random.Random(step).shuffle(batch)
        for index, item in enumerate(batch):
            due = began + (step + index / symbols) * interval
            while (wait := due - time.monotonic()) > 0:
                time.sleep(min(wait, 0.01))
            now = datetime.now(UTC)
            item = item.model_copy(update={"timestamp": now, "produced_at": now})
            at = producer.send(item)
            key = patterns.get(step, {}).get(item.symbol)
            if key is not None:
                produced[key] = at
    producer.flush()
    return produced
