"""How a transactions batch run is started: its Spark session, its lake lock, and ``run_once``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime

from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings
from finlake.lake.locks import catalog_lock_telling
from finlake.lake.tables import TRANSACTIONS_TABLES
from finlake.spark.session import build_session
from finlake.transactions.upload import open_lake
from finlake_spark.io import ensure_tables
from finlake_spark.jobs.transactions_batch import RunResult, TransactionsBatch

log = logging.getLogger(__name__)
APP_NAME = "finlake-transactions-batch"
BATCH_JAVA_OPTIONS = "-XX:+UseParallelGC -XX:-DontCompileHugeMethods"
"""The batch's driver JVM (local mode: every executor too) collects garbage with the throughput
collector, not G1: the batch holds its checkpointed rows on the heap while it aggregates, and G1's
concurrent work took CPU from the two tasks (bench_transactions: 1M rows 36.5 -> 29.1 s, 10M rows
177.7 -> 144.3 s, with the run record written without Python workers). And it compiles methods of
any size: the rules' generated code is one method past HotSpot's 8,000 bytes, which it would
otherwise only interpret (3M rows through the rules: 25 s, 6.7 s compiled)."""
BATCH_LOCK = "transactions-batch"
"""Name of the lake lock a run holds from reading its bronze range to recording the run."""
WAIT_NOTICE_S = 2.0
"""How long a run waits for the lock silently before it says that another run holds it."""


def batch_session(settings: FinlakeSettings, app_name: str = APP_NAME) -> SparkSession:
    """The batch's Spark session (the driver's JVM options take effect only if it starts the
    JVM; executors on a cluster master get them too)."""
    options = {
        "spark.driver.extraJavaOptions": BATCH_JAVA_OPTIONS,
        "spark.executor.extraJavaOptions": BATCH_JAVA_OPTIONS,
    }
    return build_session(settings, app_name=app_name, extra=options)


@contextlib.contextmanager
def batch_lock(
    settings: FinlakeSettings,
    *,
    report: Callable[[str], None] = log.warning,
    notice_after_s: float = WAIT_NOTICE_S,
) -> Iterator[None]:
    """Hold the lake's transactions batch lock within the block, waiting for another run first;
    ``report`` is told once if that run still holds it after ``notice_after_s``."""
    catalog, _ = open_lake(settings)
    said = "transactions: another batch run is in progress on this lake; waiting for it to finish"
    with catalog_lock_telling(
        catalog, BATCH_LOCK, waiting=lambda: report(said), after_s=notice_after_s
    ):
        yield


def run_once(
    settings: FinlakeSettings,
    *,
    hour: datetime | None = None,
    spark: SparkSession | None = None,
) -> RunResult:
    """One run: incremental, or the bronze received in ``hour`` again (one run at a time)."""
    session = spark or batch_session(settings)
    try:
        with batch_lock(settings):
            ensure_tables(session, settings, TRANSACTIONS_TABLES)
            batch = TransactionsBatch(session, settings.spark.catalog)
            result = batch.run_hour(hour) if hour is not None else batch.run_incremental()
    finally:
        if spark is None:
            session.stop()
    log.info("transactions batch %s: %s", result.run_id, result.counts)
    return result
