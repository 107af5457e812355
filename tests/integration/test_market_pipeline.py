"""The market flow end to end: Kafka (Avro) -> Spark -> Iceberg layers, checked by hand."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from pyiceberg.expressions import EqualTo

from finlake.config import FinlakeSettings
from finlake.contracts.models import MarketTick
from finlake.contracts.topics import TopicSpec
from finlake.kafka_io import partition_watermarks, publish
from finlake.lake.connection import open_catalog
from finlake.query import LakeQuery
from finlake.stack.kafka import CLIENT_LOGGER, create_topics
from tests.conftest import free_port
from tests.integration.market_expected import Bar, bars, rule_of, silver
from tests.integration.pipeline import pipeline_env, run_once

START = datetime(2026, 11, 25, 23, 20, tzinfo=UTC)  # the run crosses midnight UTC
SYMBOLS = ("AAA", "BBB", "CCC")
HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)


def tick(symbol: str, at: datetime, price: float | None, volume: int | None) -> MarketTick:
    return MarketTick(
        symbol=symbol, timestamp=at, price=price, volume=volume, source="replay", produced_at=at
    )


def clean_ticks(start: datetime, steps: int, seed: int) -> list[MarketTick]:
    """Interleaved random-walk ticks every 20 s, event time non-decreasing across symbols."""
    rng = random.Random(seed)
    prices = dict.fromkeys(SYMBOLS, 100.0)
    out = []
    for step in range(steps):
        for symbol in SYMBOLS:
            prices[symbol] = max(1.0, prices[symbol] + rng.choice((-0.37, -0.11, 0.0, 0.13, 0.41)))
            out.append(
                tick(
                    symbol,
                    start + step * timedelta(seconds=20),
                    round(prices[symbol], 2),
                    rng.randint(1, 90) * 10,
                )
            )
    return out


def dirty_file_a() -> tuple[list[MarketTick], set[int], set[int]]:
    """Ticks with every kind of trouble, in file order; also the late and the +01:00 lines."""
    ticks = clean_ticks(START, 240, seed=3)  # 23:20 -> 00:40 UTC
    ticks[30], ticks[33] = ticks[33], ticks[30]  # out of order (20 s apart)
    ticks[100], ticks[106] = ticks[106], ticks[100]  # out of order (40 s apart)
    extras = [
        ticks[10],  # exact duplicate
        ticks[50],  # the same instant, written in another UTC offset (see `berlin` below)
        tick("AAA", ticks[60].timestamp, 999.0, 5),  # same key, different price: first one wins
        tick("BBB", START + timedelta(minutes=5), None, 100),  # null price
        tick("CCC", START + timedelta(minutes=6), 101.0, None),  # null volume
        tick("AAA", START + timedelta(minutes=7, seconds=1), 0.0, 100),  # non-positive
        tick("BBB", START + timedelta(minutes=7, seconds=2), -3.5, 100),  # non-positive
        # Two volumes whose sum overflows a bar's bigint (the stream failed on them).
        tick("CCC", START + timedelta(minutes=8, seconds=1), 100.0, 5 * 10**18),
        tick("CCC", START + timedelta(minutes=8, seconds=2), 100.0, 5 * 10**18),
    ]
    published = ticks[:70] + extras + ticks[70:]  # extras arrive within the allowed lateness
    late_tick = tick("CCC", START + timedelta(minutes=1, seconds=7), 100.5, 10)  # > 1 h behind
    published.append(late_tick)
    return published, {len(published) - 1}, {71}


def write_csv(path: Path, ticks: list[MarketTick], berlin: set[int] = frozenset()) -> Path:
    """A replay file: ISO-8601 in UTC, every 7th line in epoch ms, ``berlin`` lines at +01:00,
    and an extra column (``venue``: the line's index) the contract has no field for."""
    lines = ["symbol,timestamp,price,volume,venue"]
    for index, tick in enumerate(ticks):
        raw = tick.timestamp.isoformat().replace("+00:00", "Z")
        if index in berlin:
            raw = tick.timestamp.astimezone(ZoneInfo("Europe/Berlin")).isoformat()
        elif index % 7 == 0:
            raw = str(int(tick.timestamp.timestamp() * 1000))
        price = "" if tick.price is None else repr(tick.price)
        volume = "" if tick.volume is None else str(tick.volume)
        lines.append(f"{tick.symbol},{raw},{price},{volume},V{index}")
    path.write_text("\n".join(lines) + "\n")
    return path


def replay(settings: FinlakeSettings, topic: str, path: Path) -> None:
    env = {**market_env(settings, path.parent, topic), "FINLAKE_INGESTION__TOPIC": topic}
    done = subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", "ingest", "replay", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed 0" in done.stdout


def market_env(settings: FinlakeSettings, home: Path, topic: str, **extra: str) -> dict[str, str]:
    """The session broker and registry, a lake of its own under ``home``."""
    lake = settings.model_copy(update={"home": home})
    return pipeline_env(lake, topic, FINLAKE_SPARK__MASTER="local[2]", **extra)


def new_topic(settings: FinlakeSettings, name: str, partitions: int = 3) -> str:
    create_topics(
        settings.kafka.bootstrap, [TopicSpec(name, partitions, 86_400_000, "symbol", None)]
    )
    return name


def lake(home: Path) -> LakeQuery:
    return LakeQuery(FinlakeSettings.model_validate({"home": home}))


def scalar(query: LakeQuery, sql: str) -> Any:
    return query.run(sql)[1][0][0]


def gold(query: LakeQuery, table: str) -> dict[tuple[str, datetime], Bar]:
    _, rows = query.run(
        f"SELECT symbol, window_start, open, high, low, close, volume, trade_count, "
        f"vwap FROM {table}"
    )
    return {(r[0], r[1]): Bar(*r) for r in rows}


def assert_gold_matches(query: LakeQuery, expected: list[MarketTick]) -> None:
    assert gold(query, "market.ohlc_1h") == bars(expected, HOUR)
    assert gold(query, "market.ohlc_1m") == bars(expected, MINUTE)


def test_dirty_replay_then_an_extension_of_the_last_hour(
    settings: FinlakeSettings, tmp_path: Path
) -> None:
    topic = new_topic(settings, "ticks-dirty")
    published, late, berlin = dirty_file_a()
    replay(settings, topic, write_csv(tmp_path / "a.csv", published, berlin))
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap, "logger": CLIENT_LOGGER})
    producer.produce(topic, b"definitely not avro", b"AAA")
    producer.produce(topic, b"\x00\x00\x00\x7f\xff\x02", b"BBB")  # unknown schema id
    producer.flush(10)
    env = market_env(settings, tmp_path, topic)
    run_once(env)

    query = lake(tmp_path)
    expected_silver = silver(published, late)
    invalid = [t for t in published if rule_of(t) is not None]
    assert scalar(query, "SELECT count(*) FROM market.raw") == len(published)
    # The extra column travelled as a Kafka header and is kept in bronze, row by row.
    headers = [h for (h,) in query.run("SELECT headers FROM market.raw")[1]]
    assert all([header["key"] for header in h] == ["finlake.extra.venue"] for h in headers)
    assert sorted(h[0]["value"] for h in headers) == sorted(f"V{i}" for i in range(len(published)))
    assert scalar(query, "SELECT count(*) FROM market.dead_letter") == 2
    assert scalar(query, "SELECT count(*) FROM market.cleaned") == len(expected_silver)
    _, by_rule = query.run(
        "SELECT rule, count(*) FROM market.quarantine GROUP BY rule ORDER BY rule"
    )
    assert dict(by_rule) == {
        "late": 1,
        "price_not_null": 1,
        "price_positive": 2,
        "volume_not_null": 1,
        "volume_plausible": 2,
    }
    assert len(invalid) == 6
    assert (
        scalar(
            query,
            "SELECT price FROM market.cleaned WHERE symbol = 'AAA' AND timestamp = "
            f"TIMESTAMPTZ '{published[60].timestamp.isoformat()}'",
        )
        != 999
    )
    assert_gold_matches(query, list(expected_silver.values()))
    assert scalar(query, "SELECT count(DISTINCT window_start::DATE) FROM market.ohlc_1h") == 2

    # File B extends the last hour (00:00-01:00) of file A: its bars are updated, not duplicated.
    extension = clean_ticks(START + timedelta(minutes=80), 30, seed=4)  # 00:40 -> 00:50
    replay(settings, topic, write_csv(tmp_path / "b.csv", extension))
    hours_before = scalar(query, "SELECT count(*) FROM market.ohlc_1h")
    run_once(env)
    query = lake(tmp_path)
    assert scalar(query, "SELECT count(*) FROM market.ohlc_1h") == hours_before
    everything = silver(published + extension, late)
    assert_gold_matches(query, list(everything.values()))
    _, runs = query.run("SELECT sum(rows_in), sum(silver_rows) FROM market.pipeline_runs")
    assert runs == [(len(published) + 2 + len(extension), len(everything))]
    # Lateness is judged per symbol: each one's clock, carried to the next batch, is its own.
    _, [(clocks,)] = query.run(
        "SELECT symbol_max_event_time FROM market.pipeline_runs ORDER BY batch_id DESC LIMIT 1"
    )
    newest: dict[str, datetime] = {}
    for t in published + extension:
        if rule_of(t) is None:
            newest[t.symbol] = max(t.timestamp, newest.get(t.symbol, t.timestamp))
    assert {symbol: moment.astimezone(UTC) for symbol, moment in dict(clocks).items()} == newest


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(1)


def test_killed_stream_restarts_to_the_same_gold(settings: FinlakeSettings, tmp_path: Path) -> None:
    topic = new_topic(settings, "ticks-crash")
    ticks = clean_ticks(START, 1500, seed=9)
    publish(settings, topic, ticks, key_field="symbol")
    env = market_env(
        settings,
        tmp_path,
        topic,
        FINLAKE_MARKET__MAX_OFFSETS_PER_TRIGGER="600",
        FINLAKE_MARKET__TRIGGER_INTERVAL_S="1",
    )
    driver = subprocess.Popen(
        [sys.executable, "-m", "finlake.cli.main", "pipeline", "run", "market"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def some_batches_landed() -> bool:
            assert driver.poll() is None, "the stream died on its own"
            try:
                return int(scalar(lake(tmp_path), "SELECT count(*) FROM market.pipeline_runs")) >= 2
            except Exception:  # tables not created yet
                return False

        _wait_for(some_batches_landed, 300)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver JVM and its Python side, mid-stream
        driver.wait(30)
    partial = int(scalar(lake(tmp_path), "SELECT count(*) FROM market.cleaned"))
    assert 0 < partial < len(ticks)
    run_once(env)
    query = lake(tmp_path)
    assert scalar(query, "SELECT count(*) FROM market.raw") == len(ticks)
    assert scalar(query, "SELECT count(*) FROM market.cleaned") == len(ticks)
    assert_gold_matches(query, ticks)


def test_a_batch_that_died_before_recording_its_run_lands_once_after_a_resume(
    settings: FinlakeSettings, tmp_path: Path
) -> None:
    topic = new_topic(settings, "ticks-unrecorded-batch")
    first = clean_ticks(START, 90, seed=7)
    publish(settings, topic, first, key_field="symbol")
    # Three batches of at most 100 records (90 ticks x 3 symbols).
    env = market_env(settings, tmp_path, topic, FINLAKE_MARKET__MAX_OFFSETS_PER_TRIGGER="100")
    run_once(env)
    # The driver died after the last batch's bronze and silver commits, before its run row, and
    # with its checkpoint (an emptyDir): the lake holds a batch no run recorded.
    catalog = open_catalog(FinlakeSettings.model_validate({"home": tmp_path}))
    runs = catalog.load_table("market.pipeline_runs")
    keys = runs.scan(selected_fields=("batch_key", "batch_id")).to_arrow().to_pylist()
    assert len(keys) == 3
    last = max(keys, key=lambda row: row["batch_id"])["batch_key"]
    runs.delete(EqualTo("batch_key", last))
    shutil.rmtree(tmp_path / "checkpoints" / "market-stream")
    second = clean_ticks(START + 90 * timedelta(seconds=20), 30, seed=8)
    publish(settings, topic, second, key_field="symbol")
    output = run_once(env)
    assert f"batch {last} committed" in output
    assert "never recorded its run; deleted them" in output
    # Lost once more: the batch undone before stays undone (its commit is still in history).
    shutil.rmtree(tmp_path / "checkpoints" / "market-stream")
    third = clean_ticks(START + 120 * timedelta(seconds=20), 10, seed=9)
    publish(settings, topic, third, key_field="symbol")
    assert "never recorded its run" not in run_once(env)
    query = lake(tmp_path)
    everything = first + second + third
    _, [(rows, records)] = query.run(
        "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM market.raw"
    )
    assert (rows, records) == (len(everything), len(everything))
    assert scalar(query, "SELECT count(*) FROM market.cleaned") == len(everything)
    assert_gold_matches(query, everything)


def test_a_stream_that_died_before_recording_any_batch_lands_each_record_once(
    settings: FinlakeSettings, tmp_path: Path
) -> None:
    topic = new_topic(settings, "ticks-no-recorded-batch")
    ticks = clean_ticks(START, 60, seed=11)
    publish(settings, topic, ticks, key_field="symbol")
    env = market_env(settings, tmp_path, topic, FINLAKE_MARKET__MAX_OFFSETS_PER_TRIGGER="100")
    run_once(env)
    # Its driver died in its first batches, after their commits, before any run row, and with
    # its checkpoint: the lake holds batches no run recorded, and nothing says where to resume.
    catalog = open_catalog(FinlakeSettings.model_validate({"home": tmp_path}))
    runs = catalog.load_table("market.pipeline_runs")
    assert len(runs.scan().to_arrow()) == 2
    runs.delete(EqualTo("kafka_topic", topic))
    shutil.rmtree(tmp_path / "checkpoints" / "market-stream")
    # Meanwhile retention dropped the older half of partition 0: those rows cannot be read
    # again, so they must stay.
    (low, high) = partition_watermarks(settings.kafka.bootstrap, topic)[0]
    assert (low, high > 1) == (0, True)
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
    (future,) = admin.delete_records([TopicPartition(topic, 0, high // 2)]).values()
    future.result(timeout=30)
    output = run_once(env)
    assert "never recorded its run; deleted them" in output
    assert f"({high // 2} rows kept: Kafka no longer holds their records)" in output
    query = lake(tmp_path)
    _, [(rows, records)] = query.run(
        "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM market.raw"
    )
    assert (rows, records) == (len(ticks), len(ticks))
    assert scalar(query, "SELECT count(*) FROM market.cleaned") == len(ticks)
    assert_gold_matches(query, ticks)


def test_a_lost_checkpoint_resumes_after_the_last_recorded_batch(
    settings: FinlakeSettings, tmp_path: Path
) -> None:
    topic = new_topic(settings, "ticks-lost-checkpoint")
    first = clean_ticks(START, 100, seed=5)
    publish(settings, topic, first, key_field="symbol")
    env = market_env(settings, tmp_path, topic)
    run_once(env)
    # A driver restarted onto an empty volume: the lake remains, Spark's offsets are gone.
    shutil.rmtree(tmp_path / "checkpoints" / "market-stream")
    second = clean_ticks(START + 100 * timedelta(seconds=20), 60, seed=6)
    publish(settings, topic, second, key_field="symbol")
    output = run_once(env)
    assert f"resuming {topic} after the batches the lake recorded" in output
    query = lake(tmp_path)
    everything = first + second
    # Each Kafka record once in bronze: the first run's records were not read again.
    _, [(rows, records)] = query.run(
        "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM market.raw"
    )
    assert (rows, records) == (len(everything), len(everything))
    assert scalar(query, "SELECT count(*) FROM market.cleaned") == len(everything)
    assert_gold_matches(query, everything)


def test_an_unanswering_registry_stops_the_batch_and_dead_letters_nothing(
    settings: FinlakeSettings, tmp_path: Path
) -> None:
    # A registry that is away for a while is no reason to call a record undecodable: the batch
    # waits for it, then stops the stream; the records stay in Kafka for the next start.
    topic = new_topic(settings, "ticks-registry-away", partitions=1)
    ticks = clean_ticks(START, 20, seed=7)
    publish(settings, topic, ticks, key_field="symbol")
    nowhere = free_port()
    away = market_env(
        settings, tmp_path, topic,
        FINLAKE_REGISTRY__PORT=str(nowhere), FINLAKE_MARKET__REGISTRY_WAIT_S="2",
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", "pipeline", "run", "market", "--once"],
        env=away, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode == 1, said[-3000:]
    assert f"error: schema registry at http://127.0.0.1:{nowhere}/" in " ".join(said.split())
    assert "the batch stops, its records stay in Kafka" in " ".join(said.split())
    query = lake(tmp_path)
    assert scalar(query, "SELECT count(*) FROM market.dead_letter") == 0
    assert scalar(query, "SELECT count(*) FROM market.raw") == 0
    run_once(market_env(settings, tmp_path, topic))  # the registry answers again
    query = lake(tmp_path)
    assert scalar(query, "SELECT count(*) FROM market.dead_letter") == 0
    assert scalar(query, "SELECT count(*) FROM market.raw") == len(ticks)
    assert scalar(query, "SELECT count(*) FROM market.cleaned") == len(ticks)
