"""The hourly transactions batch: bronze -> silver (+ quarantine) -> gold account summaries.

Incremental: a run reads the bronze snapshots committed after the last successful run (recorded in
``transactions.batch_runs``). Idempotent: silver only takes transaction ids it does not hold yet,
quarantine only rows (upload id, row number) it does not hold yet, and summaries are recomputed
from silver for the (account, day) pairs that got new rows; so re-running an hour, or a run that
died half-way, changes nothing that is already right. One run at a time: a run classifies its rows
against silver as it stands, then appends, so two at once (the hourly schedule and a ``--once``)
would both append a transaction they both found new. Runs take turns under the lake's lock
:data:`~finlake_spark.jobs.transactions_run.BATCH_LOCK` (``finlake.lake.locks``, as uploads do); a
run that waits says so.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from finlake.lake.tables import (
    TRANSACTIONS_BATCH_RUNS,
    TRANSACTIONS_QUARANTINE,
    TRANSACTIONS_RAW,
    TRANSACTIONS_SUMMARY,
    TRANSACTIONS_VALIDATED,
)
from finlake.transactions.rules import DUPLICATE_RULE
from finlake.transforms.transactions import (
    RULE,
    to_account_summaries,
    to_quarantine_rows,
    to_validated_rows,
    with_duplicate_rank,
    with_failed_rule,
    with_typed_columns,
)
from finlake_spark.io import as_of, current_snapshot, one_row

log = logging.getLogger(__name__)
INCREMENTAL = "incremental"
LINEAGE_KEY = ("upload_id", "row_number")
HOUR = "hour"


@dataclass
class RunCounts:
    """What one batch run read and wrote."""

    rows_in: int = 0
    validated_rows: int = 0
    duplicate_rows: int = 0
    quarantined_rows: int = 0
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    summary_rows: int = 0


@dataclass(frozen=True)
class RunResult:
    """A finished run: which bronze it read and its counts (``None`` range: nothing new)."""

    run_id: str
    mode: str
    bronze_from_snapshot: int | None
    bronze_to_snapshot: int | None
    hour_start: datetime | None
    counts: RunCounts
    duration_s: float

    @property
    def is_noop(self) -> bool:
        """Whether there was no bronze to read."""
        return self.counts.rows_in == 0


class TransactionsBatch:
    """One run of the batch against the lake's catalog."""

    def __init__(self, spark: SparkSession, catalog: str) -> None:
        self.spark = spark
        self.catalog = catalog
        self.raw = TRANSACTIONS_RAW.qualified(catalog)
        self.validated = TRANSACTIONS_VALIDATED.qualified(catalog)
        self.quarantine = TRANSACTIONS_QUARANTINE.qualified(catalog)
        self.summary = TRANSACTIONS_SUMMARY.qualified(catalog)
        self.runs = TRANSACTIONS_BATCH_RUNS.qualified(catalog)

    def _last_snapshot(self) -> int | None:
        rows = self.spark.sql(
            f"SELECT bronze_to_snapshot FROM {self.runs} WHERE mode = '{INCREMENTAL}' "
            "ORDER BY committed_at DESC LIMIT 1"
        ).collect()
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def _bronze_since(self, start: int | None, end: int) -> DataFrame:
        if start is None:
            return self.spark.sql(f"SELECT * FROM {self.raw} VERSION AS OF {end}")
        reader = self.spark.read.format("iceberg").option("start-snapshot-id", start)
        return reader.option("end-snapshot-id", end).load(self.raw)

    def _is_kept(self, snapshot: int) -> bool:
        """Whether bronze still has ``snapshot`` among the current snapshot's ancestors."""
        return bool(
            self.spark.sql(
                f"SELECT 1 FROM {self.raw}.history "
                f"WHERE snapshot_id = {snapshot} AND is_current_ancestor"
            ).collect()
        )

    def run_incremental(self) -> RunResult:
        """Process the bronze committed since the last successful incremental run."""
        started = time.monotonic()
        start, end = (
            self._last_snapshot(),
            current_snapshot(self.spark, TRANSACTIONS_RAW, self.catalog),
        )
        if end is None or end == start:
            return RunResult(_run_id(), INCREMENTAL, start, start, None, RunCounts(), 0.0)
        bronze = None
        if start is not None and not self._is_kept(start):
            # Maintenance expired it (no run for longer than the snapshots are kept): what was
            # appended after it cannot be told apart any more. All of bronze is read once, but
            # for the rows silver or quarantine hold already (judged once: the rules may have
            # changed since, and a row must not land in both, or in silver twice).
            log.warning(
                "transactions batch: bronze snapshot %d, where the last run ended, has expired; "
                "reading the rows of bronze that have not landed yet",
                start,
            )
            start = None
            landed = (
                self.spark.table(self.validated)
                .select(*LINEAGE_KEY)
                .unionByName(self.spark.table(self.quarantine).select(*LINEAGE_KEY))
            )
            bronze = self._bronze_since(None, end).join(landed, list(LINEAGE_KEY), "left_anti")
        counts = self._process(bronze if bronze is not None else self._bronze_since(start, end))
        return self._record(
            RunResult(_run_id(), INCREMENTAL, start, end, None, counts, time.monotonic() - started)
        )

    def run_hour(self, hour_start: datetime) -> RunResult:
        """Process again every bronze row received in one hour (idempotent)."""
        started = time.monotonic()
        hour_start = hour_start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        bronze = self.spark.table(self.raw).where(
            (F.col("received_at") >= F.lit(hour_start))
            & (F.col("received_at") < F.lit(hour_start + timedelta(hours=1)))
        )
        counts = self._process(bronze)
        return self._record(
            RunResult(_run_id(), HOUR, None, None, hour_start, counts, time.monotonic() - started)
        )

    def _process(self, bronze: DataFrame) -> RunCounts:
        # Typing and the rules run once: every pass below (counts, dedupe, silver, quarantine,
        # summaries) reads the checkpointed rows, and all of them see the same rows. A local
        # checkpoint (rows kept as they are) is quicker to build and to read than a columnar
        # cache here, and no pass needs to read only a few columns of many. (Observing the counts
        # per rule while the checkpoint is built costs more than their own pass: observed
        # aggregates are interpreted, 4 s more per 1M rows against a pass of 0.4 to 1 s.)
        with _timed("check bronze"):
            tagged = with_failed_rule(with_typed_columns(bronze)).localCheckpoint()
        return self._process_tagged(tagged)

    def _process_tagged(self, tagged: DataFrame) -> RunCounts:
        now = datetime.now(UTC)
        counts = RunCounts()
        by_rule: Counter[str | None] = Counter()
        passed_days: set[date] = set()
        with _timed("count by rule"):
            day = F.to_date("timestamp").alias("day")
            for rule, on_day, rows in tagged.groupBy(RULE, day).count().collect():
                by_rule[rule] += int(rows)
                if rule is None:
                    passed_days.add(on_day)
        counts.rows_in = sum(by_rule.values())
        if counts.rows_in == 0:
            return counts
        passed = tagged.where(F.col(RULE).isNull())
        with _timed("dedupe against silver"):
            suspects = self._classify_suspects(passed)
            fates = {row[0]: int(row[1]) for row in suspects.groupBy("_fate").count().collect()}
        not_new = suspects.where(F.col("_fate") != "new").select(*LINEAGE_KEY)
        new = passed.join(F.broadcast(not_new), list(LINEAGE_KEY), "left_anti") if fates else passed
        counts.validated_rows = by_rule.get(None, 0) - sum(fates.values()) + fates.get("new", 0)
        counts.duplicate_rows = fates.get("duplicate", 0)
        silver_before = current_snapshot(self.spark, TRANSACTIONS_VALIDATED, self.catalog)
        if counts.validated_rows:
            with _timed("append silver"):
                to_validated_rows(new, now).writeTo(self.validated).append()
        duplicates = passed.join(
            F.broadcast(suspects.where(F.col("_fate") == "duplicate").select(*LINEAGE_KEY)),
            list(LINEAGE_KEY),
            "left_semi",
        )
        failed = tagged.where(F.col(RULE).isNotNull()).unionByName(
            duplicates.withColumn(RULE, F.lit(DUPLICATE_RULE))
        )
        if counts.duplicate_rows or counts.rows_in > by_rule.get(None, 0):
            with _timed("append quarantine"):
                counts.quarantined_rows = self._quarantine(failed, now)
        with _timed("recompute summaries"):
            counts.summary_rows = self._summarise(sorted(passed_days), new, silver_before, now)
        counts.quarantined_by_rule = {str(rule): n for rule, n in by_rule.items() if rule}
        if counts.duplicate_rows:
            counts.quarantined_by_rule[DUPLICATE_RULE] = counts.duplicate_rows
        return counts

    def _classify_suspects(self, passed: DataFrame) -> DataFrame:
        """The fate of each passed row whose id repeats in the batch or is in silver already.

        ``_fate``: new (the first received of its id, not in silver), kept (this very row is in
        silver: a re-run) or duplicate. Every other passed row is new. Only narrow columns are
        shuffled, and the result is materialized before silver changes.
        """
        narrow = passed.select("transaction_id", *LINEAGE_KEY, "received_at")
        held = self.spark.table(self.validated).select(
            "transaction_id",
            F.col("upload_id").alias("_kept_upload"),
            F.col("row_number").alias("_kept_row"),
        )
        is_same_row = (F.col("_kept_upload") == F.col("upload_id")) & (
            F.col("_kept_row") == F.col("row_number")
        )
        # One shuffle by transaction_id serves the join with silver and the rank window.
        return (
            with_duplicate_rank(narrow.join(held, "transaction_id", "left"))
            .where((F.col("_copies") > 1) | F.col("_kept_upload").isNotNull())
            .select(
                *LINEAGE_KEY,
                F.when(F.col("_kept_upload").isNull() & (F.col("_rank") == 1), "new")
                .when(is_same_row, "kept")
                .otherwise("duplicate")
                .alias("_fate"),
            )
            .localCheckpoint()
        )

    def _quarantine(self, failed: DataFrame, now: datetime) -> int:
        held = self.spark.table(self.quarantine).select(*LINEAGE_KEY)
        rows = (
            to_quarantine_rows(failed, now)
            .join(held, list(LINEAGE_KEY), "left_anti")
            .localCheckpoint()
        )
        written = rows.count()
        if written:
            rows.writeTo(self.quarantine).append()
        return written

    def _stale_days(self, days: list[date]) -> list[date]:
        """Those of ``days`` whose silver count differs from the summarised count."""
        if not days:
            return []
        # Partition metadata: silver's rows per UTC day without reading a data file.
        silver = {
            row[0]: int(row[1])
            for row in self.spark.sql(
                f"SELECT partition.timestamp_day, record_count FROM {self.validated}.partitions"
            ).collect()
        }
        summarised = {
            row[0]: int(row[1])
            for row in self.spark.table(self.summary)
            .where((F.col("granularity") == "day") & _within_days("window_start", days))
            .groupBy(F.to_date("window_start"))
            .agg(F.sum("transaction_count"))
            .collect()
        }
        return sorted(day for day in days if silver.get(day, 0) != summarised.get(day, 0))

    def _summarise(
        self, days: list[date], new: DataFrame, silver_before: int | None, now: datetime
    ) -> int:
        """Recompute every window of the days whose counts changed; replace those partitions.

        The stale days' silver rows are the ones silver held before this run's append plus the
        rows this run appended (still checkpointed): read that way instead of from silver again,
        unless another commit to silver came in between.
        """
        stale = self._stale_days(days)
        if not stale:
            return 0
        silver_after = current_snapshot(self.spark, TRANSACTIONS_VALIDATED, self.catalog)
        if silver_after == silver_before or self._parent(silver_after) == silver_before:
            appended = silver_after != silver_before
            earlier = as_of(self.spark, TRANSACTIONS_VALIDATED, self.catalog, silver_before).where(
                _within_days("timestamp", stale)
            )
            fresh = to_validated_rows(new, now).where(_within_days("timestamp", stale))
            silver = earlier.unionByName(fresh) if appended else earlier
        else:
            silver = self.spark.table(self.validated).where(_within_days("timestamp", stale))
        before = current_snapshot(self.spark, TRANSACTIONS_SUMMARY, self.catalog)
        # Summary partitions are days: rewriting the stale days whole keeps every other day.
        with _sort_based_collect(self.spark):
            to_account_summaries(silver, now).writeTo(self.summary).overwritePartitions()
        return self._added_records(self.summary, before)

    def _parent(self, snapshot: int | None) -> int | None:
        if snapshot is None:
            return None
        rows = self.spark.sql(
            f"SELECT parent_id FROM {self.validated}.snapshots WHERE snapshot_id = {snapshot}"
        ).collect()
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def _added_records(self, table: str, before: int | None) -> int:
        """Rows the commit after snapshot ``before`` added (0 when nothing was committed)."""
        rows = self.spark.sql(
            f"SELECT summary['added-records'] FROM {table}.snapshots "
            f"WHERE parent_id {'IS NULL' if before is None else f'= {before}'}"
        ).collect()
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def _record(self, result: RunResult) -> RunResult:
        counts = result.counts
        row = {
            "run_id": result.run_id,
            "mode": result.mode,
            "bronze_from_snapshot": result.bronze_from_snapshot,
            "bronze_to_snapshot": result.bronze_to_snapshot,
            "hour_start": result.hour_start,
            "rows_in": counts.rows_in,
            "validated_rows": counts.validated_rows,
            "duplicate_rows": counts.duplicate_rows,
            "quarantined_rows": counts.quarantined_rows,
            "quarantined_by_rule": counts.quarantined_by_rule,
            "summary_rows": counts.summary_rows,
            "duration_s": result.duration_s,
            "committed_at": datetime.now(UTC),
        }
        one_row(self.spark, row, self.spark.table(self.runs).schema).writeTo(self.runs).append()
        return result


@contextlib.contextmanager
def _timed(phase: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    log.info("transactions batch: %s took %.1f s", phase, time.monotonic() - began)


@contextlib.contextmanager
def _sort_based_collect(spark: SparkSession) -> Iterator[None]:
    """Collect the summary's lists with a sort-based aggregate, not the object hash aggregate.

    Nearly every (account, window) is its own group: the hash aggregate gives up after 128
    groups and sorts anyway, having paid for the map first (an eighth of the summary's compute at
    10M rows).
    """
    key = "spark.sql.execution.useObjectHashAggregateExec"
    previous = spark.conf.get(key)
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.set(key, previous or "true")


def _within_days(column: str, days: list[date]) -> Column:
    """``column`` (a timestamp) falls on one of ``days`` (UTC); prunes day partitions."""
    ranges = [
        (F.col(column) >= F.lit(datetime.combine(day, datetime.min.time(), UTC)))
        & (
            F.col(column)
            < F.lit(datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC))
        )
        for day in days
    ]
    return reduce(operator.or_, ranges)


def _run_id() -> str:
    return uuid.uuid4().hex
