"""Lake I/O of the Spark jobs against a real Iceberg catalog: markers, snapshots, bar merges."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from finlake.config import FinlakeSettings
from finlake.lake.table_spec import TableSpec
from finlake.lake.tables import MARKET_OHLC_1M, MARKET_RAW
from finlake_spark.io import (
    append_newer_bars,
    append_once,
    as_of,
    current_snapshot,
    ensure_tables,
    is_write_conflict,
    landed,
    latest_value,
    merge_bars,
    retrying_conflicts,
)

T0 = datetime(2026, 11, 26, 10, 0)


@pytest.fixture
def lake(spark_lake: tuple[SparkSession, FinlakeSettings]) -> tuple[SparkSession, str]:
    """The session with empty market bar and bronze tables."""
    spark, settings = spark_lake
    catalog = settings.spark.catalog
    for spec in (MARKET_OHLC_1M, MARKET_RAW):
        spark.sql(f"DROP TABLE IF EXISTS {spec.qualified(catalog)} PURGE")
    ensure_tables(spark, settings, (MARKET_OHLC_1M, MARKET_RAW))
    return spark, catalog


def bars(spark: SparkSession, rows: list[tuple[str, int, str]]) -> DataFrame:
    """1-minute bars (symbol, minutes after T0, price) with every gold column."""
    data = [(s, T0 + timedelta(minutes=m), Decimal(p)) for s, m, p in rows]
    frame = spark.createDataFrame(data, "symbol string, window_start timestamp, p decimal(10,2)")
    return frame.select(
        "symbol",
        "window_start",
        (F.col("window_start") + F.expr("INTERVAL 1 MINUTE")).alias("window_end"),
        *[F.col("p").alias(name) for name in ("open", "high", "low", "close")],
        F.lit(1).cast("bigint").alias("volume"),
        F.lit(1).cast("bigint").alias("trade_count"),
        F.col("p").cast("decimal(18,6)").alias("vwap"),
        F.current_timestamp().alias("updated_at"),
    )


def stored(spark: SparkSession, table: TableSpec, catalog: str) -> dict[tuple[str, int], str]:
    rows = spark.table(table.qualified(catalog)).collect()
    assert len(rows) == len({(r.symbol, r.window_start) for r in rows}), "duplicate bars"
    return {
        (r.symbol, int((r.window_start - T0).total_seconds() // 60)): str(r.close) for r in rows
    }


def commits(spark: SparkSession, table: TableSpec, catalog: str) -> int:
    return spark.sql(f"SELECT * FROM {table.qualified(catalog)}.snapshots").count()


def test_bars_newer_than_the_table_are_appended_and_older_ones_merged(
    lake: tuple[SparkSession, str],
) -> None:
    spark, catalog = lake
    assert merge_bars(bars(spark, [("A", 0, "1.00"), ("A", 1, "2.00")]), MARKET_OHLC_1M, catalog)
    assert merge_bars(bars(spark, [("A", 1, "3.00"), ("B", 2, "4.00")]), MARKET_OHLC_1M, catalog)
    assert merge_bars(bars(spark, [("A", 3, "5.00")]), MARKET_OHLC_1M, catalog) == 1
    assert merge_bars(bars(spark, []), MARKET_OHLC_1M, catalog) == 0
    assert stored(spark, MARKET_OHLC_1M, catalog) == {
        ("A", 0): "1.00",
        ("A", 1): "3.00",
        ("B", 2): "4.00",
        ("A", 3): "5.00",
    }
    assert commits(spark, MARKET_OHLC_1M, catalog) == 3  # nothing to merge: no commit


def test_a_batch_merge_keeps_the_bars_the_stream_updated_after_the_batch_read_silver(
    lake: tuple[SparkSession, str],
) -> None:
    """The market batch computes bars from silver as read at ``read_at``; a bar the stream
    merged after that came from every tick silver had then and is kept, the older ones are
    replaced, the missing ones inserted."""
    spark, catalog = lake
    merge_bars(bars(spark, [("A", 0, "1.00")]), MARKET_OHLC_1M, catalog)
    read_at = datetime.now(UTC)
    time.sleep(0.01)
    merge_bars(bars(spark, [("A", 1, "2.00"), ("B", 1, "3.00")]), MARKET_OHLC_1M, catalog)
    merged = merge_bars(
        bars(spark, [("A", 0, "7.00"), ("A", 1, "8.00"), ("B", 1, "9.00"), ("B", 0, "6.00")]),
        MARKET_OHLC_1M,
        catalog,
        read_at=read_at,
    )
    assert merged == 4
    assert stored(spark, MARKET_OHLC_1M, catalog) == {
        ("A", 0): "7.00",
        ("A", 1): "2.00",
        ("B", 1): "3.00",
        ("B", 0): "6.00",
    }
    # Without read_at (the stream's own merges) the newest computation always wins.
    merge_bars(bars(spark, [("A", 1, "8.00")]), MARKET_OHLC_1M, catalog)
    assert stored(spark, MARKET_OHLC_1M, catalog)[("A", 1)] == "8.00"


def test_an_append_of_new_bars_fails_when_a_concurrent_commit_added_one(
    lake: tuple[SparkSession, str],
) -> None:
    spark, catalog = lake
    merge_bars(bars(spark, [("A", 0, "1.00")]), MARKET_OHLC_1M, catalog)
    seen = current_snapshot(spark, MARKET_OHLC_1M, catalog)
    # Another writer (the market batch) lands the bar of minute 2 after we looked.
    merge_bars(bars(spark, [("A", 2, "2.00")]), MARKET_OHLC_1M, catalog)
    first = T0 + timedelta(minutes=1)
    with pytest.raises((Py4JJavaError, PySparkException), match="onflicting"):
        append_newer_bars(
            bars(spark, [("A", 1, "9.00"), ("A", 2, "9.00")]), MARKET_OHLC_1M, catalog, seen, first
        )
    assert stored(spark, MARKET_OHLC_1M, catalog) == {("A", 0): "1.00", ("A", 2): "2.00"}


def test_a_write_that_conflicts_with_another_commit_is_tried_again(
    lake: tuple[SparkSession, str],
) -> None:
    spark, catalog = lake
    merge_bars(bars(spark, [("A", 0, "1.00")]), MARKET_OHLC_1M, catalog)
    stale = current_snapshot(spark, MARKET_OHLC_1M, catalog)
    merge_bars(bars(spark, [("A", 2, "2.00")]), MARKET_OHLC_1M, catalog)  # another writer
    first, tries = T0 + timedelta(minutes=1), []

    def write() -> None:  # the first try looked at the table before the other writer's commit
        tries.append(len(tries))
        new = bars(spark, [("A", 1, "9.00")])
        if len(tries) == 1:
            append_newer_bars(new, MARKET_OHLC_1M, catalog, stale, first)
        else:
            merge_bars(new, MARKET_OHLC_1M, catalog)

    with pytest.raises(Py4JJavaError) as conflict:
        append_newer_bars(bars(spark, [("A", 1, "9.00")]), MARKET_OHLC_1M, catalog, stale, first)
    assert is_write_conflict(conflict.value)
    retrying_conflicts(write)
    assert tries == [0, 1]
    assert stored(spark, MARKET_OHLC_1M, catalog) == {
        ("A", 0): "1.00",
        ("A", 1): "9.00",
        ("A", 2): "2.00",
    }
    assert not is_write_conflict(ValueError("not a write"))


def test_landed_names_the_tables_with_a_marker_and_the_snapshot_before_it(
    lake: tuple[SparkSession, str],
) -> None:
    spark, catalog = lake
    tables = (MARKET_OHLC_1M, MARKET_RAW)
    first = bars(spark, [("A", 0, "1.00")])
    assert append_once(first, MARKET_OHLC_1M, catalog, "q:1")
    before = current_snapshot(spark, MARKET_OHLC_1M, catalog)
    assert append_once(bars(spark, [("A", 1, "2.00")]), MARKET_OHLC_1M, catalog, "q:2")
    assert landed(spark, tables, catalog, "q:1") == {MARKET_OHLC_1M.identifier: None}
    done = landed(spark, tables, catalog, "q:2")
    assert done == {MARKET_OHLC_1M.identifier: before}
    # A replay skips the append, and reads the table as it was before the batch's commit.
    assert not append_once(first, MARKET_OHLC_1M, catalog, "q:2", done)
    assert not append_once(first, MARKET_OHLC_1M, catalog, "q:2")
    assert as_of(spark, MARKET_OHLC_1M, catalog, before).count() == 1
    assert as_of(spark, MARKET_OHLC_1M, catalog, None).count() == 0
    assert latest_value(as_of(spark, MARKET_OHLC_1M, catalog, before), "window_start") == T0
    assert latest_value(spark.table(MARKET_RAW.qualified(catalog)), "timestamp") is None


def test_a_table_made_by_an_older_release_gets_the_new_columns(
    spark_lake: tuple[SparkSession, FinlakeSettings],
) -> None:
    spark, settings = spark_lake
    catalog = settings.spark.catalog
    name = MARKET_RAW.qualified(catalog)
    spark.sql(f"DROP TABLE IF EXISTS {name} PURGE")
    older = dataclasses.replace(
        MARKET_RAW, columns=tuple(c for c in MARKET_RAW.columns if c.name != "headers")
    )
    ensure_tables(spark, settings, (older,))
    spark.sql(f"INSERT INTO {name} (symbol, price) VALUES ('AAPL', 1.5)")
    assert "headers" not in spark.table(name).columns
    ensure_tables(spark, settings, (MARKET_RAW,))
    assert spark.table(name).columns == list(MARKET_RAW.column_names)
    [row] = spark.table(name).collect()
    assert (row.symbol, row.headers) == ("AAPL", None)
    ensure_tables(spark, settings, (MARKET_RAW,))  # nothing left to add: no error
