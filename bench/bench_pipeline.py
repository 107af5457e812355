"""Market pipeline: silver+gold throughput vs the minimum Spark job, and tick-to-gold latency.

Starts its own stack on free ports in a temp home. 1: publishes a backlog of ``--ticks`` ticks to
a topic, runs ``pipeline run market --once`` on local[2] (micro-batches of the stream's
``maxOffsetsPerTrigger``, or ``--batch-ticks``) and, as the peer, a plain Spark job (same session
factory) reading the same topic, decoding the Avro and appending to one Iceberg table. 2: runs the
stream (``--trigger`` s) while ticks arrive at ``--rate``/s, event time = wall time, and measures
when each tick reached gold.

    uv run --frozen python bench/bench_pipeline.py [--ticks 5000000] [--batch-ticks N] [--rate 200]
        [--seconds 75] [--trigger 5] [--only throughput|latency]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))

from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro

from bench.processes import Proc, started
from finlake.config import FinlakeSettings
from finlake.contracts.models import MarketTick
from finlake.contracts.schemas import schema_text
from finlake.contracts.topics import TopicSpec
from finlake.kafka_io import publish
from finlake.query import LakeQuery, QueryError
from finlake.simulate import random_walk_ticks
from finlake.spark.session import build_session
from finlake.stack.kafka import create_topics
from finlake.stack.manager import Stack
from tests.integration.conftest import stack_settings

SYMBOLS = tuple(f"SYM{n:02d}" for n in range(20))
START = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
GOAL_EVENTS_S = 50_000
# `finlake pipeline run market [--once]`, minus loading every deployable's CLI plug-in.
RUN = (
    "import sys; from finlake_spark.cli import Pipeline, run_pipeline; "
    "run_pipeline(Pipeline.MARKET, once='--once' in sys.argv)"
)
PIPELINE = [sys.executable, "-c", RUN]


def fresh_run(settings: FinlakeSettings, home: Path, topic: str, **extra: str) -> dict[str, str]:
    """Create ``topic`` and ``home``; the env of a Spark process reading that topic."""
    spec = TopicSpec(topic, settings.topics.market_data_partitions, 86_400_000, "symbol", None)
    create_topics(settings.kafka.bootstrap, [spec])
    home.mkdir()
    return {
        **os.environ,
        "FINLAKE_HOME": str(home),
        "FINLAKE_KAFKA__PORT": str(settings.kafka.port),
        "FINLAKE_REGISTRY__PORT": str(settings.registry.port),
        "FINLAKE_MARKET__TOPIC": topic,
        "FINLAKE_SPARK__MASTER": "local[2]",
        **extra,
    }


def run_to_end(command: list[str], env: dict[str, str], log: Path) -> float:
    """Run ``command`` to completion; its wall clock in seconds (fails loudly with the log)."""
    began = time.monotonic()
    with started(command, env, log) as process:
        code = process.wait(1800)
    if code != 0:
        raise SystemExit(f"{command} exited {code}:\n{log.read_text()[-3000:]}")
    return time.monotonic() - began


def first_row(query: LakeQuery, sql: str) -> tuple[Any, ...]:
    """The first row of ``sql`` over the lake."""
    return query.run(sql)[1][0]


def peer_job(topic: str) -> None:
    """The peer, in its own process: Kafka -> from_avro -> one Iceberg append; prints JSON."""
    settings = FinlakeSettings()
    spark = build_session(settings, app_name="finlake-bench-peer")
    table = f"{settings.spark.catalog}.bench.ticks"
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.spark.catalog}.bench")
    records = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    payload = F.expr("substring(value, 6, length(value) - 5)")  # strip the Confluent header
    ticks = records.select(from_avro(payload, schema_text("market_tick")).alias("t")).select("t.*")
    spark.createDataFrame([], ticks.schema).writeTo(table).using("iceberg").create()
    began = time.monotonic()  # like a batch's duration_s: Kafka read to commit, no DDL
    ticks.writeTo(table).append()
    seconds = time.monotonic() - began
    print(json.dumps({"rows": spark.table(table).count(), "seconds": seconds}))
    spark.stop()


def throughput(settings: FinlakeSettings, root: Path, count: int, batch: int | None) -> None:
    topic, home, peer_home = "bench-throughput", root / "throughput", root / "peer"
    # Without --batch-ticks the stream takes the product's default batch size: the backlog is
    # read the way a stream catching up (or one fed at full speed) reads it.
    extra = {"FINLAKE_MARKET__MAX_OFFSETS_PER_TRIGGER": str(batch)} if batch else {}
    env = fresh_run(settings, home, topic, **extra)
    ticks = random_walk_ticks(SYMBOLS, count=count // len(SYMBOLS), seed=7, start=START)
    began = time.monotonic()
    published = publish(settings, topic, ticks, key_field="symbol").delivered
    print(f"published {published} ticks in {time.monotonic() - began:.1f} s")
    wall = run_to_end([*PIPELINE, "--once"], env, home / "pipeline.log")
    lake = LakeQuery(FinlakeSettings.model_validate({"home": home}))
    runs = lake.run("SELECT rows_in, duration_s FROM market.pipeline_runs ORDER BY batch_id")[1]
    batches, rows_in, silver, gold_1m, gold_1h, busy = first_row(
        lake,
        "SELECT count(*), sum(rows_in), sum(silver_rows), sum(gold_1m_rows), sum(gold_1h_rows), "
        "sum(duration_s) FROM market.pipeline_runs",
    )
    peer_env = fresh_run(settings, peer_home, topic)
    peer_wall = run_to_end([sys.executable, __file__, "--peer", topic], peer_env, peer_home / "log")
    output = (peer_home / "log").read_text().splitlines()
    peer = json.loads(next(line for line in output if line.startswith('{"rows"')))

    # DuckDB sums BIGINTs into HUGEINTs, which arrive as Decimal.
    ours, theirs = float(rows_in) / float(busy), peer["rows"] / peer["seconds"]
    each = ", ".join(f"{int(n):,} in {float(s):.1f} s" for n, s in runs)
    warm = runs[1:]
    steady = sum(int(n) for n, _ in warm) / sum(float(s) for _, s in warm) if warm else None
    after_first = f"{steady:,.0f}" if steady else "-"
    print(
        f"pipeline: {batches} batch(es) ({each}), rows_in {rows_in}, silver {silver}, "
        f"gold bars 1m {gold_1m} / 1h {gold_1h}\n"
        f"pipeline batch time (sum duration_s): {busy:7.1f} s   process wall {wall:6.1f} s\n"
        f"peer job time (read+decode+append):   {peer['seconds']:7.1f} s   "
        f"process wall {peer_wall:6.1f} s   rows {peer['rows']}\n"
        f"pipeline silver+gold events/s: {ours:10,.0f}   (after the first batch: {after_first})\n"
        f"peer events/s:                 {theirs:10,.0f}\n"
        f"ratio pipeline/peer:           {ours / theirs:10.2f}\n"
        f"goal >= {GOAL_EVENTS_S:,} events/s on local[2]: "
        + ("met" if ours >= GOAL_EVENTS_S else "NOT met")
    )


def paced_ticks(rate: float, seconds: float, seed: int) -> Iterator[MarketTick]:
    """Random-walk ticks at ``rate``/s, produced_at = now, event time = the scheduled wall time."""
    wall0, mono0 = datetime.now(UTC), time.monotonic()
    steps = int(rate * seconds) // len(SYMBOLS)
    for n, tick in enumerate(random_walk_ticks(SYMBOLS, count=steps, seed=seed, start=wall0)):
        time.sleep(max(0.0, mono0 + n / rate - time.monotonic()))
        at = wall0 + timedelta(seconds=n / rate)  # unique per symbol at ms precision
        yield tick.model_copy(update={"timestamp": at, "produced_at": datetime.now(UTC)})


def wait_for_rows(home: Path, rows: int, stream: Proc, log: Path) -> LakeQuery:
    """Wait until the stream in ``home`` has committed ``rows`` Kafka records; fail if it dies."""
    deadline = time.monotonic() + 600
    while True:
        done = 0
        # Only once Spark made the tables: PyIceberg must not race it to create the catalog.
        if (home / "warehouse" / "market" / "pipeline_runs" / "metadata").is_dir():
            query = LakeQuery(FinlakeSettings.model_validate({"home": home}))
            with suppress(QueryError):  # created, not committed yet
                done = first_row(query, "SELECT sum(rows_in) FROM market.pipeline_runs")[0] or 0
        if done >= rows:
            return query
        if stream.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"stream died or stalled at {done} rows:\n{log.read_text()[-3000:]}")
        time.sleep(2)


# A tick is in gold once its micro-batch commits its pipeline_runs row (after both bar merges).
# Bronze ingest_ts is its batch's start time; the batch is the first run committed after it.
LATENCY_SQL = """
WITH ticks AS (
  SELECT epoch(b.committed_at) - epoch(t.produced_at) AS total,
         epoch(t.ingest_ts) - epoch(t.produced_at) AS waiting
  FROM (SELECT produced_at, ingest_ts FROM market.raw WHERE produced_at >= TIMESTAMPTZ '{since}') t
  ASOF JOIN market.pipeline_runs b ON b.committed_at >= t.ingest_ts
)
SELECT count(*), quantile_cont(total, 0.5), quantile_cont(total, 0.99), max(total),
       quantile_cont(waiting, 0.5), quantile_cont(waiting, 0.99) FROM ticks
"""
# Cross-check from the bars themselves: updated_at of a 1m bar minus the produced_at of its last
# tick (earlier ticks of a bar have their updated_at overwritten by later batches).
BAR_SQL = """
SELECT quantile_cont(epoch(g.updated_at) - epoch(t.produced_at), [0.5, 0.99])
FROM (SELECT symbol, date_trunc('minute', timestamp) AS w,
             max_by(produced_at, timestamp) AS produced_at
      FROM market.raw WHERE produced_at >= TIMESTAMPTZ '{since}' GROUP BY ALL) t
JOIN market.ohlc_1m g ON g.symbol = t.symbol AND g.window_start = t.w
"""


def latency(
    settings: FinlakeSettings, root: Path, rate: float, seconds: float, trigger: float
) -> None:
    topic, home = "bench-latency", root / "latency"
    env = fresh_run(settings, home, topic, FINLAKE_MARKET__TRIGGER_INTERVAL_S=str(trigger))
    log = home / "pipeline.log"
    with started(PIPELINE, env, log) as stream:
        # Warm up: JVM start, table creation and the first batches stay out of the numbers.
        warm = publish(settings, topic, paced_ticks(rate, 10, 1), key_field="symbol").delivered
        wait_for_rows(home, warm, stream, log)
        since = datetime.now(UTC)
        sent = publish(settings, topic, paced_ticks(rate, seconds, 2), key_field="symbol").delivered
        query = wait_for_rows(home, warm + sent, stream, log)
    stamp = since.isoformat()
    ticks, p50, p99, worst, wait50, wait99 = first_row(query, LATENCY_SQL.format(since=stamp))
    batches, batch50, batch99 = first_row(
        query,
        "SELECT count(*), quantile_cont(duration_s, 0.5), quantile_cont(duration_s, 0.99) "
        f"FROM market.pipeline_runs WHERE committed_at >= TIMESTAMPTZ '{stamp}'",
    )
    bar50, bar99 = first_row(query, BAR_SQL.format(since=stamp))[0]
    bound = trigger + 2 * batch99
    print(
        f"latency: {sent} ticks at {rate:.0f}/s for {seconds:.0f} s, {ticks} measured; "
        f"trigger {trigger:.1f} s\n"
        f"{batches} batches: duration p50 {batch50:.2f} s, p99 {batch99:.2f} s\n"
        f"tick-to-gold p50 {p50:.2f} s, p99 {p99:.2f} s, max {worst:.2f} s\n"
        f"  of which waiting for its batch to start: p50 {wait50:.2f} s, p99 {wait99:.2f} s\n"
        f"  cross-check, 1m bar updated_at - its last tick: p50 {bar50:.2f} s, p99 {bar99:.2f} s\n"
        f"p99 {p99:.2f} s <= trigger + 2 x p99 batch = {bound:.2f} s: "
        + ("met" if p99 <= bound else "NOT met")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=5_000_000, help="Backlog (throughput).")
    parser.add_argument(
        "--batch-ticks",
        type=int,
        help="Records per micro-batch (throughput; default: the stream's maxOffsetsPerTrigger).",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="Ticks/s in the latency run.")
    parser.add_argument("--seconds", type=float, default=75.0, help="Length of the latency run.")
    parser.add_argument("--trigger", type=float, default=5.0, help="Trigger interval (latency).")
    parser.add_argument(
        "--only",
        choices=("throughput", "latency"),
        help="Run one part of the bench (default: both).",
    )
    parser.add_argument("--peer", metavar="TOPIC", help=argparse.SUPPRESS)  # the peer's process
    args = parser.parse_args()
    if args.peer:
        peer_job(args.peer)
        return
    # A SIGTERM to the bench still runs the finally blocks below (stream and stack stopped).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="finlake-bench-pipeline-") as tmp:
        root = Path(tmp)
        stack = Stack(stack_settings(root / "stack"))
        try:
            stack.up(report=print)
            if args.only != "latency":
                throughput(stack.settings, root, args.ticks, args.batch_ticks)
            if args.only != "throughput":
                latency(stack.settings, root, args.rate, args.seconds, args.trigger)
        finally:
            stack.down(report=print)
    print(f"bench took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
