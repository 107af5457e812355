"""Silver ticks -> gold OHLCV bars; open/close by event time, whatever the batching."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def with_window_start(ticks: DataFrame, unit: str) -> DataFrame:
    """Add ``window_start``: the event time truncated to ``unit`` (minute, hour, day)."""
    return ticks.withColumn("window_start", F.date_trunc(unit, "timestamp"))


def to_bars(ticks: DataFrame, unit: str) -> DataFrame:
    """One bar per symbol and ``unit`` window: open, high, low, close, volume, trade_count, vwap."""
    window_length = {
        "minute": "INTERVAL 1 MINUTE",
        "hour": "INTERVAL 1 HOUR",
        "day": "INTERVAL 1 DAY",
    }
    notional = F.col("price") * F.col("volume")
    bars = (
        with_window_start(ticks, unit)
        .groupBy("symbol", "window_start")
        .agg(
            # (symbol, timestamp) is unique in silver, so min_by/max_by have no ties.
            F.min_by("price", "timestamp").alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.max_by("price", "timestamp").alias("close"),
            F.sum("volume").alias("volume"),
            F.count(F.lit(1)).alias("trade_count"),
            F.sum(notional).alias("_notional"),
        )
    )
    # No volume, no volume weighting: vwap stays null rather than invent a price.
    vwap = F.when(F.col("volume") > 0, F.col("_notional") / F.col("volume"))
    return bars.select(
        "symbol",
        "window_start",
        (F.col("window_start") + F.expr(window_length[unit])).alias("window_end"),
        "open",
        "high",
        "low",
        "close",
        F.col("volume").cast("bigint").alias("volume"),
        "trade_count",
        vwap.cast("decimal(18,6)").alias("vwap"),
    )


def touched_windows(ticks: DataFrame, unit: str) -> DataFrame:
    """The distinct (symbol, window_start) a set of new ticks falls into."""
    return with_window_start(ticks, unit).select("symbol", "window_start").distinct()
