"""Gold account summaries from a handful of silver rows (the batch's summary transform)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import (
    DecimalType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from finlake.lake.tables import TRANSACTIONS_SUMMARY
from finlake.transforms.transactions import to_account_summaries

SILVER = StructType(
    [
        StructField("account_id", StringType()),
        StructField("timestamp", TimestampType()),
        StructField("amount", DecimalType(18, 2)),
        StructField("currency", StringType()),
        StructField("merchant_category", StringType()),
        StructField("channel", StringType()),
        StructField("status", StringType()),
    ]
)
UPDATED = datetime(2026, 5, 2, 0, 0, tzinfo=UTC)


def at(hour: int, minute: int, day: int = 1) -> datetime:
    return datetime(2026, 5, day, hour, minute, tzinfo=UTC)


ROWS = [
    ("a1", at(10, 5), Decimal("10.00"), "EUR", "5411", "pos", "approved"),
    ("a1", at(10, 50), Decimal("2.50"), "EUR", "5411", "ecommerce", "declined"),
    ("a1", at(10, 55), Decimal("-1.25"), "EUR", "5812", "pos", None),
    ("a1", at(13, 0), Decimal("7.00"), "EUR", "5812", "pos", "approved"),
    ("a1", at(13, 1), Decimal("3.00"), "USD", "5812", "pos", "approved"),
    ("a1", at(0, 0, day=2), Decimal("1.00"), "EUR", "5411", "atm", "approved"),
    ("a2", at(10, 0), Decimal("99.99"), "EUR", "4829", "transfer", "approved"),
]


@pytest.fixture(scope="module")
def summaries(spark: SparkSession) -> dict[tuple[str, str, datetime, str], dict[str, Any]]:
    frame = to_account_summaries(spark.createDataFrame(ROWS, SILVER), UPDATED, partitions=3)
    assert frame.columns == TRANSACTIONS_SUMMARY.column_names
    return {
        (r["account_id"], r["granularity"], r["window_start"], r["currency"]): r.asDict()
        for r in frame.collect()
    }


def naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)  # Spark returns UTC wall time (session zone UTC)


def test_one_row_per_account_window_and_currency_for_hours_and_days(
    summaries: dict[tuple[str, str, datetime, str], dict[str, Any]],
) -> None:
    assert set(summaries) == {
        ("a1", "hour", naive(at(10, 0)), "EUR"),
        ("a1", "hour", naive(at(13, 0)), "EUR"),
        ("a1", "hour", naive(at(13, 0)), "USD"),
        ("a1", "hour", naive(at(0, 0, day=2)), "EUR"),
        ("a2", "hour", naive(at(10, 0)), "EUR"),
        ("a1", "day", naive(at(0, 0)), "EUR"),
        ("a1", "day", naive(at(0, 0)), "USD"),
        ("a1", "day", naive(at(0, 0, day=2)), "EUR"),
        ("a2", "day", naive(at(0, 0)), "EUR"),
    }
    hour = summaries[("a1", "hour", naive(at(10, 0)), "EUR")]
    assert hour["window_end"] == naive(at(11, 0))
    assert summaries[("a1", "day", naive(at(0, 0)), "EUR")]["window_end"] == naive(at(0, 0, 2))
    assert all(row["updated_at"] == naive(UPDATED) for row in summaries.values())


def test_counts_sums_and_breakdowns_by_category_and_channel(
    summaries: dict[tuple[str, str, datetime, str], dict[str, Any]],
) -> None:
    hour = summaries[("a1", "hour", naive(at(10, 0)), "EUR")]
    assert (hour["transaction_count"], hour["amount_sum"]) == (3, Decimal("11.25"))
    assert (hour["amount_max"], hour["declined_count"]) == (Decimal("10.00"), 1)
    assert hour["count_by_category"] == {"5411": 2, "5812": 1}
    assert hour["amount_by_category"] == {"5411": Decimal("12.50"), "5812": Decimal("-1.25")}
    assert hour["count_by_channel"] == {"pos": 2, "ecommerce": 1}
    assert hour["amount_by_channel"] == {"pos": Decimal("8.75"), "ecommerce": Decimal("2.50")}
    day = summaries[("a1", "day", naive(at(0, 0)), "EUR")]
    assert (day["transaction_count"], day["amount_sum"]) == (4, Decimal("18.25"))
    assert day["count_by_category"] == {"5411": 2, "5812": 2}
    assert day["amount_by_channel"] == {"pos": Decimal("15.75"), "ecommerce": Decimal("2.50")}
    usd = summaries[("a1", "day", naive(at(0, 0)), "USD")]
    assert (usd["transaction_count"], usd["amount_sum"]) == (1, Decimal("3.00"))


def test_windows_whose_parts_repeat_no_key_and_those_that_do_sum_the_same_way(
    spark: SparkSession,
) -> None:
    # Hour 9: two parts, no category or channel twice (the maps are zipped); hour 11: two parts
    # sharing the category (its entry folds both); the day holds all four.
    rows = [
        ("a3", at(9, 1), Decimal("4.00"), "EUR", "5411", "pos", "approved"),
        ("a3", at(9, 2), Decimal("6.00"), "EUR", "5812", "atm", "approved"),
        ("a3", at(11, 1), Decimal("1.10"), "EUR", "5411", "pos", "approved"),
        ("a3", at(11, 2), Decimal("2.20"), "EUR", "5411", "ecommerce", "approved"),
    ]
    frame = to_account_summaries(spark.createDataFrame(rows, SILVER), UPDATED, partitions=2)
    got = {(r["granularity"], r["window_start"]): r for r in frame.collect()}
    zipped = got[("hour", naive(at(9, 0)))]
    assert zipped["count_by_category"] == {"5411": 1, "5812": 1}
    assert zipped["amount_by_channel"] == {"pos": Decimal("4.00"), "atm": Decimal("6.00")}
    folded = got[("hour", naive(at(11, 0)))]
    assert folded["count_by_category"] == {"5411": 2}
    assert folded["amount_by_category"] == {"5411": Decimal("3.30")}
    assert folded["count_by_channel"] == {"pos": 1, "ecommerce": 1}
    day = got[("day", naive(at(0, 0)))]
    assert day["count_by_category"] == {"5411": 3, "5812": 1}
    assert day["amount_by_channel"] == {
        "pos": Decimal("5.10"),
        "atm": Decimal("6.00"),
        "ecommerce": Decimal("2.20"),
    }
