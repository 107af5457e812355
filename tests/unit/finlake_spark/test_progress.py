"""Micro-batch phases of a real streaming query reach the metrics and the log."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pyspark.sql import SparkSession

from finlake_spark.progress import observe_progress

QUERY = "progress-test"


def _count(phase: str) -> float:
    value = REGISTRY.get_sample_value(
        "finlake_pipeline_microbatch_phase_seconds_count", {"query": QUERY, "phase": phase}
    )
    return value or 0.0


def test_each_micro_batch_phase_is_observed(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "rows.json").write_text("\n".join(json.dumps({"n": n}) for n in range(5)))
    before = _count("triggerExecution")
    listener = observe_progress(spark)
    try:
        with caplog.at_level(logging.INFO, logger="finlake_spark.progress"):
            query = (
                spark.readStream.schema("n int")
                .json(str(source))
                .writeStream.format("noop")
                .option("checkpointLocation", str(tmp_path / "checkpoint"))
                .trigger(availableNow=True)
                .queryName(QUERY)
                .start()
            )
            query.awaitTermination(120)
            deadline = time.monotonic() + 30  # the listener bus delivers asynchronously
            while _count("triggerExecution") == before and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        spark.streams.removeListener(listener)
    assert _count("triggerExecution") == before + 1
    assert _count("addBatch") >= 1
    assert any(f"{QUERY} batch 0: 5 rows" in record.getMessage() for record in caplog.records)
