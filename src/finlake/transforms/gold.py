"""Silver ticks -> gold OHLCV bars; open/close by event time, whatever the batching."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

WINDOW_LENGTH = {
    "minute": "INTERVAL 1 MINUTE",
    "hour": "INTERVAL 1 HOUR",
    "day": "INTERVAL 1 DAY",
}


def with_window_start(ticks: DataFrame, unit: str) -> DataFrame:
    """Add ``window_start``: the event time truncated to ``unit`` (minute, hour, day)."""
    return ticks.withColumn("window_start", F.date_trunc(unit, "timestamp"))


def to_partial_bars(ticks: DataFrame, unit: str, *extra: Column) -> DataFrame:
    """Per symbol and ``unit`` window, what bars are combined from (``roll_up``, ``finish_bars``).

    ``first_tick_at``/``last_tick_at`` carry the event time of ``open``/``close`` and ``notional``
    the exact sum of price x volume, so coarser bars combine from finer ones without rounding.
    ``extra`` aggregate columns are passed through.
    """
    return (
        with_window_start(ticks, unit)
        .groupBy("symbol", "window_start")
        .agg(
            # (symbol, timestamp) is unique in silver, so min_by/max_by have no ties.
            F.min("timestamp").alias("first_tick_at"),
            F.min_by("price", "timestamp").alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.max("timestamp").alias("last_tick_at"),
            F.max_by("price", "timestamp").alias("close"),
            F.sum("volume").alias("volume"),
            F.count(F.lit(1)).alias("trade_count"),
            F.sum(F.col("price") * F.col("volume")).alias("notional"),
            *extra,
        )
    )


def roll_up(partials: DataFrame, unit: str, *extra: Column) -> DataFrame:
    """Combine partial bars into ``unit`` windows (each finer window lies in one coarser one)."""
    return (
        partials.withColumn("window_start", F.date_trunc(unit, "window_start"))
        .groupBy("symbol", "window_start")
        .agg(
            # Finer windows are disjoint, so their first/last tick times never tie.
            F.min("first_tick_at").alias("first_tick_at"),
            F.min_by("open", "first_tick_at").alias("open"),
            F.max("high").alias("high"),
            F.min("low").alias("low"),
            F.max("last_tick_at").alias("last_tick_at"),
            F.max_by("close", "last_tick_at").alias("close"),
            F.sum("volume").alias("volume"),
            F.sum("trade_count").alias("trade_count"),
            F.sum("notional").alias("notional"),
            *extra,
        )
    )


def finish_bars(partials: DataFrame, unit: str) -> DataFrame:
    """The gold columns of partial bars: window end, volume as bigint, vwap."""
    # No volume, no volume weighting: vwap stays null rather than invent a price.
    vwap = F.when(F.col("volume") > 0, F.col("notional") / F.col("volume"))
    return partials.select(
        "symbol",
        "window_start",
        (F.col("window_start") + F.expr(WINDOW_LENGTH[unit])).alias("window_end"),
        "open",
        "high",
        "low",
        "close",
        F.col("volume").cast("bigint").alias("volume"),
        F.col("trade_count").cast("bigint").alias("trade_count"),
        vwap.cast("decimal(18,6)").alias("vwap"),
    )


def to_bars(ticks: DataFrame, unit: str) -> DataFrame:
    """One bar per symbol and ``unit`` window: open, high, low, close, volume, trade_count, vwap."""
    return finish_bars(to_partial_bars(ticks, unit), unit)


def touched_windows(ticks: DataFrame, unit: str) -> DataFrame:
    """The distinct (symbol, window_start) a set of new ticks falls into."""
    return with_window_start(ticks, unit).select("symbol", "window_start").distinct()
