from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from finlake.quality import MARKET_TICK_EXPECTATIONS, Expectation, ExpectationAction
from finlake.transforms.gold import to_bars, touched_windows
from finlake.transforms.quality import split_by_expectations
from finlake.transforms.silver import tag_ticks, to_silver_ticks, with_rule_detail

T0 = datetime(2026, 11, 25, 23, 59, 30, tzinfo=UTC)
TICKS = StructType(
    [
        StructField("symbol", StringType()),
        StructField("timestamp", TimestampType()),
        StructField("price", DoubleType()),
        StructField("volume", LongType()),
        StructField("kafka_partition", IntegerType()),
        StructField("kafka_offset", LongType()),
    ]
)


def ticks(spark: SparkSession, rows: list[tuple[object, ...]]) -> DataFrame:
    return spark.createDataFrame(rows, schema=TICKS)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_expectations_route_each_row_by_its_first_failed_rule(spark: SparkSession) -> None:
    rows = [
        ("AAPL", at(0), 10.0, 5, 0, 0),
        ("AAPL", at(1), None, 5, 0, 1),
        ("AAPL", at(2), 10.0, None, 0, 2),
        ("AAPL", at(3), 0.0, 5, 0, 3),
        ("AAPL", at(4), -1.0, None, 0, 4),
        ("", at(5), 10.0, 5, 0, 5),
        ("AAPL", at(6), 1e9, 5, 0, 6),
    ]
    result = split_by_expectations(ticks(spark, rows), MARKET_TICK_EXPECTATIONS)
    assert [r.kafka_offset for r in result.passed.collect()] == [0]
    routed = {r.kafka_offset: r.rule for r in result.quarantined.collect()}
    assert routed == {
        1: "price_not_null",
        2: "volume_not_null",
        3: "price_positive",
        4: "volume_not_null",
        5: "symbol_present",
        6: "price_fits_decimal",
    }
    assert result.dropped.count() == 0


def test_drop_and_fail_actions_are_separated(spark: SparkSession) -> None:
    rules = [
        Expectation(name="no_zero", condition="price <> 0", action=ExpectationAction.DROP),
        Expectation(name="no_huge", condition="price < 100", action=ExpectationAction.FAIL),
    ]
    rows = [("A", at(0), 0.0, 1, 0, 0), ("A", at(1), 500.0, 1, 0, 1), ("A", at(2), 5.0, 1, 0, 2)]
    result = split_by_expectations(ticks(spark, rows), rules)
    assert [r.kafka_offset for r in result.dropped.collect()] == [0]
    assert [(r.kafka_offset, r.rule) for r in result.failed.collect()] == [(1, "no_huge")]
    assert [r.kafka_offset for r in result.passed.collect()] == [2]


def outcomes(frame: DataFrame) -> dict[tuple[int, int], str | None]:
    return {(r.kafka_partition, r.kafka_offset): r.outcome for r in frame.collect()}


def test_tag_keeps_the_first_read_of_a_key_and_marks_the_rest_duplicate(
    spark: SparkSession,
) -> None:
    rows = [("A", at(0), 10.0, 1, 0, 7), ("A", at(0), 11.0, 1, 0, 3), ("B", at(0), 12.0, 1, 1, 0)]
    tagged = tag_ticks(ticks(spark, rows), MARKET_TICK_EXPECTATIONS, {}, lateness_s=600)
    assert outcomes(tagged) == {(0, 3): None, (0, 7): "duplicate", (1, 0): None}


def test_late_is_judged_per_partition_in_offset_order(spark: SparkSession) -> None:
    rows = [
        ("A", at(0), 1.0, 1, 0, 0),
        ("A", at(1000), 1.0, 1, 0, 1),
        ("A", at(500), 1.0, 1, 0, 2),  # 500 s behind: within 600 s
        ("A", at(300), 1.0, 1, 0, 3),  # 700 s behind: late
        ("A", at(5000), None, 1, 0, 4),  # invalid: does not move the clock
        ("A", at(4000), 1.0, 1, 0, 5),
        ("B", at(10), 1.0, 1, 1, 0),  # other partition: its own clock
    ]
    tagged = tag_ticks(ticks(spark, rows), MARKET_TICK_EXPECTATIONS, {}, lateness_s=600)
    assert outcomes(tagged) == {
        (0, 0): None,
        (0, 1): None,
        (0, 2): None,
        (0, 3): "late",
        (0, 4): "price_not_null",
        (0, 5): None,
        (1, 0): None,
    }


def test_late_carries_the_previous_batches_maximum(spark: SparkSession) -> None:
    rows = [("B", at(10), 1.0, 1, 1, 5)]
    tagged = tag_ticks(ticks(spark, rows), MARKET_TICK_EXPECTATIONS, {1: at(2000)}, 600)
    assert outcomes(tagged) == {(1, 5): "late"}


def test_quarantined_rows_carry_rule_and_detail(spark: SparkSession) -> None:
    rows = [("A", at(0), -1.0, 1, 0, 0)]
    tagged = tag_ticks(ticks(spark, rows), MARKET_TICK_EXPECTATIONS, {}, lateness_s=600)
    [row] = with_rule_detail(tagged, MARKET_TICK_EXPECTATIONS).collect()
    assert (row.rule, row.detail) == ("price_positive", "keep price > 0")


def test_silver_price_is_decimal_with_two_places(spark: SparkSession) -> None:
    base = ticks(spark, [("A", at(0), 10.006, 1, 0, 0)])
    enriched = base.select(
        "*",
        F.lit("USD").alias("currency"),
        F.lit("XNAS").alias("exchange"),
        F.lit("replay").alias("source"),
        F.lit(at(0)).alias("ingest_ts"),
    )
    [row] = to_silver_ticks(enriched).collect()
    assert row.price == Decimal("10.01")
    assert str(to_silver_ticks(enriched).schema["price"].dataType) == "DecimalType(10,2)"


def _silver(spark: SparkSession, rows: list[tuple[str, datetime, str, int]]) -> DataFrame:
    return spark.createDataFrame(
        [(s, t, Decimal(p), v) for s, t, p, v in rows],
        "symbol string, timestamp timestamp, price decimal(10,2), volume bigint",
    )


def test_bars_take_open_and_close_by_event_time_not_arrival(spark: SparkSession) -> None:
    # Arrival order is scrambled; event time decides open and close.
    frame = _silver(
        spark,
        [
            ("A", at(40), "12.00", 100),
            ("A", at(31), "10.00", 300),
            ("A", at(89), "11.00", 100),
            ("A", at(35), "9.00", 0),
            ("A", at(0), "8.00", 10),
        ],
    )
    bars = {r.window_start: r for r in to_bars(frame, "minute").collect()}
    first = bars[datetime(2026, 11, 26, 0, 0)]
    assert (first.open, first.close) == (Decimal("10.00"), Decimal("11.00"))
    assert (first.high, first.low, first.volume, first.trade_count) == (
        Decimal("12.00"),
        Decimal("9.00"),
        500,
        4,
    )
    assert first.vwap == Decimal("10.600000")  # (1200 + 3000 + 1100) / 500
    last_of_day = bars[datetime(2026, 11, 25, 23, 59)]
    assert last_of_day.window_end == datetime(2026, 11, 26, 0, 0)


def test_bar_with_no_volume_has_null_vwap(spark: SparkSession) -> None:
    [bar] = to_bars(_silver(spark, [("A", at(0), "5.00", 0)]), "hour").collect()
    assert bar.vwap is None
    assert bar.window_start == datetime(2026, 11, 25, 23, 0)


@pytest.mark.parametrize(("unit", "expected"), [("minute", 4), ("hour", 3)])
def test_touched_windows_are_distinct_per_symbol(
    spark: SparkSession, unit: str, expected: int
) -> None:
    frame = _silver(
        spark,
        [
            ("A", at(0), "1.00", 1),
            ("A", at(35), "1.00", 1),
            ("A", at(95), "1.00", 1),
            ("B", at(35), "1.00", 1),
        ],
    )
    assert touched_windows(frame, unit).count() == expected
