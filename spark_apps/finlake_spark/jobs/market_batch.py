"""The hourly market batch: gold bars recomputed from silver over a lookback window.

The stream already merges the bars of the windows each micro-batch touches; the batch makes the
gold tables converge whatever happened to the stream (a late tick merged after its window's bars, a
restart between the silver and the gold write). The MERGE on (symbol, window_start) is idempotent,
so a rerun changes nothing. A bar the stream merged after the silver snapshot the batch reads was
committed is left alone: it holds every tick of that snapshot, and maybe newer ones.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from pyspark.sql import functions as F

from finlake.lake.tables import MARKET_CLEANED, MARKET_OHLC_1H, MARKET_OHLC_1M, MARKET_TABLES
from finlake.spark.session import build_session
from finlake.transforms.gold import to_bars
from finlake_spark.config import SparkAppSettings
from finlake_spark.io import as_of, committed_at, current_snapshot, ensure_tables, merge_bars

log = logging.getLogger(__name__)


def window_floor(now: datetime, lookback: timedelta) -> datetime:
    """Start of the first whole hour the lookback reaches into (its bars are recomputed whole)."""
    return (now - lookback).replace(minute=0, second=0, microsecond=0)


def run(
    settings: SparkAppSettings, *, lookback: timedelta, now: datetime | None = None
) -> dict[str, int]:
    """Recompute the 1-minute and 1-hour bars of silver rows since ``now - lookback``."""
    spark = build_session(settings, app_name="finlake-market-batch")
    catalog = settings.spark.catalog
    ensure_tables(spark, settings, MARKET_TABLES)
    since = window_floor(now or datetime.now(UTC), lookback)
    # One silver snapshot for every bar; a bar the stream merged after that snapshot's commit
    # holds its ticks and maybe newer ones, so it is kept. Both times are the stream driver's.
    snapshot = current_snapshot(spark, MARKET_CLEANED, catalog)
    read_at = committed_at(spark, MARKET_CLEANED, catalog, snapshot)
    silver = as_of(spark, MARKET_CLEANED, catalog, snapshot).filter(
        F.col("timestamp") >= F.lit(since)
    )
    merged: dict[str, int] = {}
    for unit, table in (("minute", MARKET_OHLC_1M), ("hour", MARKET_OHLC_1H)):
        bars = to_bars(silver, unit).withColumn("updated_at", F.current_timestamp())
        merged[table.identifier] = bars.count()
        merge_bars(bars, table, catalog, read_at=read_at)
    log.info("market batch since %s: %s", since.isoformat(), merged)
    return merged
