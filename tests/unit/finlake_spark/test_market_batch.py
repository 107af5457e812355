"""The hourly market batch against a real Iceberg catalog: gold converges on silver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from finlake.config import FinlakeSettings
from finlake.lake.tables import MARKET_CLEANED, MARKET_OHLC_1H, MARKET_OHLC_1M, MARKET_TABLES
from finlake_spark.config import SparkAppSettings
from finlake_spark.io import ensure_tables, merge_bars
from finlake_spark.jobs import market_batch

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
HOUR = NOW.replace(minute=0)  # the hour the ticks fall in
TICKS = [  # (symbol, seconds after HOUR, price, volume)
    ("AAA", 5, "10.00", 100),
    ("AAA", 20, "12.00", 50),
    ("AAA", 50, "9.00", 10),  # minute 0: O 10 H 12 L 9 C 9
    ("AAA", 70, "11.00", 20),  # minute 1
    ("BBB", 130, "50.00", 5),  # minute 2
]


def _silver(spark: SparkSession, catalog: str) -> None:
    rows = [
        (s, HOUR + timedelta(seconds=at), Decimal(p), v, HOUR + timedelta(seconds=at))
        for s, at, p, v in TICKS
    ]
    frame = spark.createDataFrame(
        rows, "symbol string, timestamp timestamp, price decimal(10,2), volume bigint, t timestamp"
    )
    schema = spark.table(MARKET_CLEANED.qualified(catalog)).schema
    frame.select(
        *[
            F.col(f.name) if f.name in frame.columns else F.lit(None).cast(f.dataType).alias(f.name)
            for f in schema
        ]
    ).writeTo(MARKET_CLEANED.qualified(catalog)).append()


def _bars(spark: SparkSession, table: str) -> dict[tuple[str, int], tuple[str, ...]]:
    return {
        (r.symbol, int((r.window_start.replace(tzinfo=UTC) - HOUR).total_seconds() // 60)): (
            str(r.open),
            str(r.high),
            str(r.low),
            str(r.close),
            str(r.volume),
            str(r.trade_count),
        )
        for r in spark.table(table).collect()
    }


def test_the_batch_recomputes_gold_from_silver_and_keeps_bars_the_stream_wrote_meanwhile(
    spark_lake: tuple[SparkSession, FinlakeSettings],
) -> None:
    spark, lake = spark_lake
    settings = SparkAppSettings.model_validate({"home": lake.home, "spark": lake.spark})
    catalog = settings.spark.catalog
    for spec in MARKET_TABLES:
        spark.sql(f"DROP TABLE IF EXISTS {spec.qualified(catalog)} PURGE")
    ensure_tables(spark, settings, MARKET_TABLES)
    minutes, hours = MARKET_OHLC_1M.qualified(catalog), MARKET_OHLC_1H.qualified(catalog)
    # A bar of minute 0 from before silver's last commit (stale: the stream missed a late tick),
    # and one of minute 1 the stream merged after that commit (from silver as it was then).
    stale = spark.sql(
        f"SELECT 'AAA' AS symbol, TIMESTAMP '{HOUR:%Y-%m-%d %H:%M:%S}Z' AS window_start"
    ).select(
        "symbol",
        "window_start",
        (F.col("window_start") + F.expr("INTERVAL 1 MINUTE")).alias("window_end"),
        *[
            F.lit(Decimal("1.00")).cast("decimal(10,2)").alias(c)
            for c in ("open", "high", "low", "close")
        ],
        F.lit(1).cast("bigint").alias("volume"),
        F.lit(1).cast("bigint").alias("trade_count"),
        F.lit(Decimal("1")).cast("decimal(18,6)").alias("vwap"),
    )
    merge_bars(
        stale.select("*", F.current_timestamp().alias("updated_at")), MARKET_OHLC_1M, catalog
    )
    _silver(spark, catalog)
    newer = stale.withColumn("window_start", F.col("window_start") + F.expr("INTERVAL 1 MINUTE"))
    newer = newer.withColumn("window_end", F.col("window_start") + F.expr("INTERVAL 1 MINUTE"))
    merge_bars(
        newer.select("*", F.current_timestamp().alias("updated_at")), MARKET_OHLC_1M, catalog
    )

    counts = market_batch.run(settings, lookback=timedelta(hours=3), now=NOW)

    assert counts == {MARKET_OHLC_1M.identifier: 3, MARKET_OHLC_1H.identifier: 2}
    expected_minutes = {
        ("AAA", 0): ("10.00", "12.00", "9.00", "9.00", "160", "3"),
        ("AAA", 1): ("1.00", "1.00", "1.00", "1.00", "1", "1"),  # the stream's, kept
        ("BBB", 2): ("50.00", "50.00", "50.00", "50.00", "5", "1"),
    }
    expected_hours = {
        ("AAA", 0): ("10.00", "12.00", "9.00", "11.00", "180", "4"),
        ("BBB", 0): ("50.00", "50.00", "50.00", "50.00", "5", "1"),
    }
    assert _bars(spark, minutes) == expected_minutes
    assert _bars(spark, hours) == expected_hours
    # Idempotent: a rerun over the same silver changes no bar.
    market_batch.run(settings, lookback=timedelta(hours=3), now=NOW)
    assert _bars(spark, minutes) == expected_minutes
    assert _bars(spark, hours) == expected_hours
