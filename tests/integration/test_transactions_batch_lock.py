"""Two transactions batch runs at once on a real lake take turns: no transaction twice in silver.

Each run classifies its rows against silver as it stands, then appends; a run started while
another holds the batch lock (the hourly schedule and a ``--once``) waits, then finds the bronze
processed already.
"""

from __future__ import annotations

import io
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings
from finlake.transactions.rules import TEXT_COLUMNS
from finlake.transactions.upload import open_lake, upload_transactions
from finlake_spark.jobs.transactions_batch import RunResult
from finlake_spark.jobs.transactions_run import batch_lock, run_once
from tests.integration.conftest import empty_lake

HEADER = ",".join(TEXT_COLUMNS)
ROW = "lock-{n},acc-lock,card1,{ts},12.50,EUR,Corner Grocer,5411,DE,pos,chip,approved,false"


def test_a_run_waits_for_the_one_in_progress_and_then_adds_nothing_twice(
    spark_lake: tuple[SparkSession, FinlakeSettings], caplog: pytest.LogCaptureFixture
) -> None:
    spark, settings = spark_lake
    empty_lake(settings, "transactions")
    ts = f"{datetime.now(UTC) - timedelta(days=1):%Y-%m-%dT%H:%M:%S}Z"
    data = "\n".join([HEADER, *(ROW.format(n=n, ts=ts) for n in range(3))]) + "\n"
    catalog, warehouse = open_lake(settings)
    upload_transactions(catalog, warehouse, io.BytesIO(data.encode()), file_name="lock.csv")
    results: list[RunResult] = []

    def run() -> None:
        results.append(run_once(settings, spark=spark))

    waiting = threading.Thread(target=run)
    with caplog.at_level(logging.WARNING), batch_lock(settings):  # a run in progress
        waiting.start()
        waiting.join(8)
        assert waiting.is_alive(), "the second run did not wait for the lock"
        assert "another batch run is in progress" in caplog.text
    waiting.join(300)
    results.append(run_once(settings, spark=spark))
    assert [r.counts.validated_rows for r in results] == [3, 0]
    ids = spark.sql("SELECT transaction_id FROM lake.transactions.validated").collect()
    assert sorted(row[0] for row in ids) == ["lock-0", "lock-1", "lock-2"]
