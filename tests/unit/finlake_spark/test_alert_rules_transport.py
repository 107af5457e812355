"""The alert rules reach the stateful processor with each micro-batch's tasks (a job's local
property), not through a file on the driver's disk: executors in other pods see the same rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, Row, SparkSession

from finlake.contracts.resources import ResourceError
from finlake.errors import ConfigurationError
from finlake_spark.alerts.config import DetectionAppSettings
from finlake_spark.alerts.processor import EVENT_SCHEMA, REJECTED, AlertProcessor
from finlake_spark.alerts.rules import (
    RULES_PROPERTY,
    RuleSource,
    TaskRules,
    decode_rules,
    encode_rules,
    load_rules,
    parse_snapshot,
)
from finlake_spark.alerts.sink import AlertSink
from finlake_spark.jobs.alert_detection import STATE_STORE

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
INPUT = (
    "symbol string, timestamp_ms bigint, timestamp timestamp, price double, volume bigint, "
    "error string, raw binary, kafka_partition int, kafka_offset bigint"
)


def rule(name: str, level: float) -> str:
    return (
        "apiVersion: finlake.io/v1alpha1\nkind: AlertRule\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  symbols: [AAA]\n"
        f"  condition: {{type: price_cross, level: {level}, direction: above}}\n"
    )


def ticks(path: Path, prices: list[tuple[int, float]], first_offset: int) -> None:
    import json

    lines = []
    for offset, (seconds, price) in enumerate(prices, start=first_offset):
        moment = T0 + timedelta(seconds=seconds)
        lines.append(
            json.dumps(
                {
                    "symbol": "AAA",
                    "timestamp_ms": int(moment.timestamp() * 1000),
                    "timestamp": moment.isoformat(),
                    "price": price,
                    "volume": 100,
                    "kafka_partition": 0,
                    "kafka_offset": offset,
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")


def test_outside_a_task_with_rules_the_processor_fails_clearly() -> None:
    with pytest.raises(RuntimeError, match=f"no alert rules in this task .*{RULES_PROPERTY}"):
        TaskRules().rules()


def test_the_property_value_is_the_snapshot_compressed(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(rule("cross-105", 105))
    source = RuleSource([tmp_path], tmp_path / "state" / "rules.json")
    assert source.refresh() is True
    assert source.text is not None
    value = encode_rules(source.text)
    assert value.isascii()
    assert decode_rules(value) == source.text
    assert [r.name for r in parse_snapshot(decode_rules(value))] == ["cross-105"]


def test_the_driver_keeps_the_last_valid_rules_across_a_restart(tmp_path: Path) -> None:
    folder, snapshot = tmp_path / "rules", tmp_path / "state" / "rules.json"
    folder.mkdir()
    (folder / "a.yaml").write_text(rule("cross-105", 105))
    source = RuleSource([folder], snapshot)
    assert source.refresh() is True
    assert source.refresh() is False  # unchanged
    (folder / "a.yaml").write_text("apiVersion: finlake.io/v1alpha1\nkind: AlertRule\n")
    assert source.refresh() is False
    assert source.problem is not None
    assert [r.name for r in source.rules] == ["cross-105"]
    restarted = RuleSource([folder], snapshot)  # a new driver, the edit still invalid
    assert restarted.refresh() is False
    assert [r.name for r in restarted.rules] == ["cross-105"]
    assert restarted.text == source.text
    snapshot.unlink()
    with pytest.raises(ResourceError, match="metadata: Field required"):
        RuleSource([folder], snapshot).refresh()  # no valid set at all: nothing starts


def test_one_rule_name_in_two_namespaces_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(rule("cross", 105))
    (tmp_path / "b.yaml").write_text(
        rule("cross", 110).replace("{name: cross}", "{name: cross, namespace: desk-b}")
    )
    with pytest.raises(ResourceError) as refused:
        load_rules([tmp_path])
    assert str(refused.value) == (
        "AlertRule/cross: in namespaces default, desk-b: one detector needs each rule name once"
    )


def test_an_empty_rules_folder_is_no_rules_only_when_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "mounted"
    folder.mkdir()
    with pytest.raises(ConfigurationError, match=r"no \*\.yaml rule files"):
        RuleSource([folder], tmp_path / "a.json").refresh()
    allowed = RuleSource([folder], tmp_path / "b.json", allow_none=True)
    assert allowed.refresh() is True
    assert (allowed.rules, allowed.text) == ([], "[]")
    (folder / "a.yaml").write_text(rule("cross-105", 105))  # the first AlertRule arrives
    assert allowed.refresh() is True
    assert [r.name for r in allowed.rules] == ["cross-105"]


@pytest.fixture
def state_store(spark: SparkSession) -> Iterator[None]:
    key = "spark.sql.streaming.stateStore.providerClass"
    previous = spark.conf.get(key)
    spark.conf.set(key, STATE_STORE)
    yield
    spark.conf.set(key, previous or "")


@pytest.mark.usefixtures("state_store")
def test_each_micro_batch_evaluates_the_rules_the_driver_read_for_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    rules, source = tmp_path / "rules", tmp_path / "ticks"
    rules.mkdir()
    source.mkdir()
    (rules / "first.yaml").write_text(rule("cross-105", 105))
    ticks(source / "1.json", [(0, 100.0), (10, 106.0)], 0)
    ticks(source / "2.json", [(20, 107.0), (30, 111.0)], 2)
    settings = DetectionAppSettings.model_validate({"home": tmp_path / "home"})
    sink = AlertSink(settings, RuleSource([rules], settings.rules_snapshot))
    sink.rules.refresh()
    fired: list[list[str]] = []

    def batch(firings: DataFrame, batch_id: int) -> None:
        rows: list[Row] = sink.evaluate(firings)
        fired.append([row.rule for row in rows if row.kind != REJECTED])
        if batch_id == 0:  # a rule edit between two micro-batches
            (rules / "first.yaml").unlink()
            (rules / "second.yaml").write_text(rule("cross-110", 110))

    stream: Any = (
        spark.readStream.schema(INPUT)
        .option("maxFilesPerTrigger", 1)
        .json(str(source))
        .withWatermark("timestamp", "60 seconds")
        .groupBy("symbol")
        .transformWithState(
            AlertProcessor(
                settings.registry,
                settings.detection.source_topic,
                settings.detection.registry_wait_s,
                settings.detection.max_ahead_s,
            ),
            EVENT_SCHEMA,
            "Append",
            "EventTime",
        )
    )
    query = (
        stream.writeStream.foreachBatch(batch)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(300)
    assert query.exception() is None
    # Batch 0 under the first rule; batch 1 under the edit only (107 -> 111 crosses 110, and
    # 105 is no longer watched). Any later batch (timers) fires nothing.
    assert fired[:2] == [["cross-105"], ["cross-110"]]
    assert not any(fired[2:])
