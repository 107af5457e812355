"""Producer throughput: our path (Avro encoder + confluent-kafka) vs Kafka's ProducerPerformance.

Both run in the same process tree against the same freshly started broker, with the same producer
settings (idempotent, acks=all, linger 20 ms, zstd) and the same record size: the Avro-encoded
size of a typical tick. Prints both rates and their ratio (goal: ours >= 50% of the peer's).

    uv run --frozen python -m bench.bench_producer [--records 500000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from finlake.config import FinlakeSettings
from finlake.contracts.models import MarketTick
from finlake.contracts.topics import TopicSpec
from finlake.kafka_io import producer_config
from finlake.simulate import random_walk_ticks
from finlake.stack.artifacts import KAFKA, ArtifactCache
from finlake.stack.java import find_java
from finlake.stack.kafka import create_topics
from finlake.stack.manager import Stack
from finlake_ingestion.metrics import IngestionMetrics
from finlake_ingestion.publisher import TickPublisher
from finlake_ingestion.sources.base import Batch
from finlake_ingestion.sources.simulate import simulated_symbols
from tests.conftest import free_port
from tests.integration.conftest import stack_settings

PEER_RESULT = re.compile(r"(\d+) records sent, ([\d.]+) records/sec")
SHARED_PROPS = ("acks", "enable.idempotence", "linger.ms", "compression.type")


def make_ticks(count: int) -> list[MarketTick]:
    symbols = simulated_symbols(20)
    start = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
    return list(random_walk_ticks(symbols, count=count // len(symbols), seed=7, start=start))


def ours(settings: FinlakeSettings, topic: str, ticks: list[MarketTick]) -> float:
    """Records/s of TickPublisher: encode, produce, wait for every delivery report."""
    publisher = TickPublisher(settings, IngestionMetrics(), topic=topic, source="bench")
    publisher.publish(Batch(ticks[:10_000]))  # warm-up: connections, metadata, caches
    publisher.flush(60)
    started = time.perf_counter()
    publisher.publish(Batch(ticks))
    remaining = publisher.flush(120)
    elapsed = time.perf_counter() - started
    if remaining or publisher.stats.failed:
        raise SystemExit(f"our producer lost records: {remaining} pending, {publisher.stats}")
    return len(ticks) / elapsed


def peer(settings: FinlakeSettings, topic: str, records: int, record_size: int) -> float:
    """Records/s of org.apache.kafka.tools.ProducerPerformance with the same producer settings."""
    java = find_java(
        minimum=17,
        java_home=settings.stack.java_home,
        purpose="ProducerPerformance",
        setting="FINLAKE_STACK__JAVA_HOME",
    )
    lib = ArtifactCache(settings.stack.cache_dir).ensure(KAFKA) / "lib"
    ours_conf = producer_config(settings)
    props = [f"bootstrap.servers={settings.kafka.bootstrap}"]
    props += [f"{key}={str(ours_conf[key]).lower()}" for key in SHARED_PROPS]
    command = [
        str(java.executable),
        "-cp",
        f"{lib}/*",
        "org.apache.kafka.tools.ProducerPerformance",
        *("--topic", topic, "--num-records", str(records), "--record-size", str(record_size)),
        *("--throughput", "-1", "--producer-props", *props),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    results = PEER_RESULT.findall(done.stdout)
    if done.returncode != 0 or not results:
        raise SystemExit(f"ProducerPerformance failed: {(done.stderr or done.stdout)[-2000:]}")
    return float(results[-1][1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="finlake-bench-") as home:
        settings = stack_settings(Path(home))
        stack = Stack(settings)
        try:
            stack.up(report=print)
            run(settings, args.records, args.rounds)
        finally:
            stack.down(report=print)


def run(settings: FinlakeSettings, records: int, rounds: int) -> None:
    partitions = settings.topics.market_data_partitions
    topics = [f"bench-{name}-{free_port()}" for name in ("ours", "peer")]
    create_topics(
        settings.kafka.bootstrap,
        [TopicSpec(t, partitions, 3_600_000, key="symbol", contract="market_tick") for t in topics],
    )
    ticks = make_ticks(records)
    probe = TickPublisher(settings, IngestionMetrics(), topic=topics[0], source="bench")
    record_size = len(probe.encode(ticks[len(ticks) // 2]))
    print(f"{len(ticks)} records of {record_size} bytes (Avro wire format of a typical tick)")
    best_ours = best_peer = 0.0
    ratios = []
    for round_number in range(1, rounds + 1):
        rate_ours = ours(settings, topics[0], ticks)
        rate_peer = peer(settings, topics[1], len(ticks), record_size)
        ratios.append(rate_ours / rate_peer)
        print(
            f"round {round_number}: ours {rate_ours:,.0f} records/s, "
            f"peer {rate_peer:,.0f} records/s, ratio {ratios[-1]:.0%}"
        )
        best_ours, best_peer = max(best_ours, rate_ours), max(best_peer, rate_peer)
    print(f"ours (TickPublisher, Python):        {best_ours:>12,.0f} records/s")
    print(f"peer (Kafka ProducerPerformance):    {best_peer:>12,.0f} records/s")
    print(
        f"ratio ours/peer: {best_ours / best_peer:.0%} best vs best of {rounds} rounds, "
        f"{statistics.median(ratios):.0%} median of the rounds (goal >= 50%)"
    )


if __name__ == "__main__":
    main()
