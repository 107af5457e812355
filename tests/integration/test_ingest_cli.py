"""``finlake ingest`` and ``python -m finlake_ingestion`` as processes against the real stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from finlake.config import FinlakeSettings
from tests.conftest import free_port
from tests.integration.test_ingest_publish import consume_topic, fresh_topic


def stack_env(settings: FinlakeSettings, topic: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "COLUMNS": "200",
        "FINLAKE_HOME": str(settings.home),
        "FINLAKE_KAFKA__PORT": str(settings.kafka.port),
        "FINLAKE_REGISTRY__PORT": str(settings.registry.port),
        "FINLAKE_INGESTION__TOPIC": topic,
        **extra,
    }


def ingest(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", "ingest", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


def topic_size(settings: FinlakeSettings, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap, "group.id": "sizes"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        marks = [consumer.get_watermark_offsets(TopicPartition(topic, p), 10) for p in partitions]
    finally:
        consumer.close()
    return sum(high - low for low, high in marks)


def test_replay_command_publishes_and_reports(settings: FinlakeSettings, tmp_path: Path) -> None:
    topic = fresh_topic(settings)
    path = tmp_path / "ticks.csv"
    rows = [f"AAPL,2026-11-24T14:{30 + m}:00Z,{234 + m / 10},{100 * m},USD" for m in range(12)]
    path.write_text("symbol,timestamp,price,volume,currency\n" + "\n".join(rows) + "\n")
    done = ingest("replay", str(path), env=stack_env(settings, topic))
    assert done.returncode == 0, done.stderr
    assert f"replay: published 12 records to '{topic}', failed 0" in done.stdout
    records = consume_topic(settings, topic, expect=12)
    assert sorted(t.price for t, _ in records) == [234 + m / 10 for m in range(12)]


def test_malformed_file_publishes_nothing(settings: FinlakeSettings, tmp_path: Path) -> None:
    topic = fresh_topic(settings)
    path = tmp_path / "ticks.csv"
    good = [f"AAPL,2026-11-24T14:30:{s:02d}Z,1.5,1" for s in range(40)]
    path.write_text("symbol,timestamp,price,volume\n" + "\n".join([*good, "AAPL,x,1,1"]) + "\n")
    done = ingest("replay", str(path), env=stack_env(settings, topic))
    assert done.returncode == 1
    assert f"{path}:42: timestamp 'x'" in done.stderr
    assert "Traceback" not in done.stderr
    assert topic_size(settings, topic) == 0


def test_simulate_command_covers_hours_of_event_time(settings: FinlakeSettings) -> None:
    topic = fresh_topic(settings)
    done = ingest(
        "simulate",
        *("--symbols", "4", "--count", "120", "--event-interval", "1m"),
        *("--start", "2026-11-24T14:30:00Z", "--seed", "7"),
        env=stack_env(settings, topic),
    )
    assert done.returncode == 0, done.stderr
    assert f"simulate: published 480 records to '{topic}', failed 0" in done.stdout
    records = consume_topic(settings, topic, expect=480)
    times = sorted(t.timestamp for t, _ in records)
    assert (times[-1] - times[0]).total_seconds() == 119 * 60


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()
    except OSError:
        return 0, ""


def test_service_serves_probes_and_flushes_on_sigterm(settings: FinlakeSettings) -> None:
    topic = fresh_topic(settings)
    port = free_port()
    env = stack_env(
        settings,
        topic,
        FINLAKE_INGESTION__SOURCE="simulate",
        FINLAKE_INGESTION__SIMULATE_RATE="300",
        FINLAKE_INGESTION__HTTP_HOST="127.0.0.1",
        FINLAKE_INGESTION__HTTP_PORT=str(port),
    )
    service = subprocess.Popen(
        [sys.executable, "-m", "finlake_ingestion"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while get(port, "/readyz")[0] != 200 and time.monotonic() < deadline:
            assert service.poll() is None, service.communicate()[1]
            time.sleep(0.2)
        assert get(port, "/readyz") == (200, "ready\n")
        assert get(port, "/healthz") == (200, "ok\n")
        time.sleep(1.5)
        status, metrics = get(port, "/metrics")
        assert status == 200
        assert 'finlake_ingestion_records_produced_total{source="simulate"}' in metrics
        # Every source stamps its batches, not only Yahoo's polls (the dashboard's staleness).
        assert 'finlake_ingestion_last_batch_timestamp_seconds{source="simulate"}' in metrics
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=60)
    finally:
        if service.poll() is None:
            service.kill()
            service.communicate()
    assert service.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    finished = [line for line in lines if line["message"] == "run finished"]
    assert len(finished) == 1
    assert finished[0]["stopped"] is True
    assert finished[0]["undelivered"] == 0
    assert finished[0]["delivered"] == finished[0]["sent"] > 0
    assert topic_size(settings, topic) == finished[0]["sent"]
