"""Running alert detection as users do: `finlake pipeline run alerts`, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from finlake.config import FinlakeSettings
from finlake.contracts.models import AlertEvent
from finlake.kafka_io import read_back
from finlake.query import LakeQuery
from finlake.stack.kafka import CLIENT_LOGGER


def detection_env(
    settings: FinlakeSettings, home: Path, source_topic: str, alerts_topic: str, **extra: str
) -> dict[str, str]:
    """The session's broker and registry, a lake and checkpoint of its own under ``home``."""
    return {
        **os.environ,
        "FINLAKE_HOME": str(home),
        "FINLAKE_KAFKA__PORT": str(settings.kafka.port),
        "FINLAKE_REGISTRY__PORT": str(settings.registry.port),
        "FINLAKE_DETECTION__SOURCE_TOPIC": source_topic,
        "FINLAKE_DETECTION__ALERTS_TOPIC": alerts_topic,
        "FINLAKE_SPARK__MASTER": "local[2]",
        **extra,
    }


def run_detection_once(env: dict[str, str], *rules: Path) -> str:
    """Drain the source topic once; the job's output (fails the test when the job fails)."""
    options = [arg for path in rules for arg in ("--rules", str(path))]
    done = subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", "pipeline", "run", "alerts", "--once", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "alerts: done" in done.stdout
    return done.stdout + done.stderr


def topic_events(settings: FinlakeSettings, topic: str) -> list[AlertEvent]:
    """The events on ``topic`` (three partitions), read from their start."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap, "group.id": "t", "logger": CLIENT_LOGGER}
    )
    try:
        offsets = {}
        for partition in range(3):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            if high > low:
                offsets[partition] = (low, high - 1)
    finally:
        consumer.close()
    return read_back(settings, topic, AlertEvent, offsets) if offsets else []


def table_events(home: Path) -> list[tuple[object, ...]]:
    """``alerts.events`` of the lake under ``home``, by rule and window."""
    query = LakeQuery(FinlakeSettings.model_validate({"home": home}))
    return query.run(
        "SELECT event_id, rule, symbol, window_start, value, severity, message, labels "
        "FROM alerts.events ORDER BY rule, window_start"
    )[1]
