"""Bronze ticks -> silver: late ticks routed, duplicates dropped, money as decimal(10,2)."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from finlake.quality import LATE_RULE

LATE_DETAIL = "event time older than the partition's max event time minus the allowed lateness"


def with_seen_max_event_time(ticks: DataFrame, before: dict[int, datetime]) -> DataFrame:
    """Add ``seen_max``: the latest event time read earlier in the same Kafka partition.

    Lateness is judged per partition in offset order (market-data is keyed by symbol), so a
    tick is late or on time whatever micro-batch it lands in.
    """
    earlier = (
        Window.partitionBy("kafka_partition")
        .orderBy("kafka_offset")
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    previous = F.lit(None).cast("timestamp")
    for partition, moment in before.items():
        previous = F.when(F.col("kafka_partition") == partition, F.lit(moment)).otherwise(previous)
    return ticks.withColumn("seen_max", F.greatest(F.max("timestamp").over(earlier), previous))


def split_late(
    ticks: DataFrame, before: dict[int, datetime], lateness_s: int
) -> tuple[DataFrame, DataFrame]:
    """(on time, late): late ticks are older than what their partition saw minus ``lateness_s``."""
    seen = with_seen_max_event_time(ticks, before)
    limit = F.col("seen_max") - F.make_dt_interval(secs=F.lit(lateness_s))
    is_late = F.coalesce(F.col("timestamp") < limit, F.lit(False))
    late = (
        seen.filter(is_late)
        .withColumn("rule", F.lit(LATE_RULE))
        .withColumn("detail", F.lit(LATE_DETAIL))
        .drop("seen_max")
    )
    return seen.filter(~is_late).drop("seen_max"), late


def dedupe_ticks(ticks: DataFrame) -> DataFrame:
    """One row per (symbol, timestamp): the first read from Kafka (lowest partition, offset)."""
    first_read = Window.partitionBy("symbol", "timestamp").orderBy(
        "kafka_partition", "kafka_offset"
    )
    return (
        ticks.withColumn("_rank", F.row_number().over(first_read)).filter("_rank = 1").drop("_rank")
    )


def to_silver_ticks(ticks: DataFrame) -> DataFrame:
    """The silver columns: price cast to decimal(10,2), Kafka coordinates kept for lineage."""
    return ticks.select(
        "symbol",
        "timestamp",
        F.col("price").cast("decimal(10,2)").alias("price"),
        "volume",
        "currency",
        "exchange",
        "source",
        "kafka_partition",
        "kafka_offset",
        "ingest_ts",
    )
