"""Bronze ticks -> silver: late ticks routed, duplicates dropped, money as decimal(10,2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from finlake.quality import LATE_RULE, Expectation
from finlake.transforms.quality import first_failed_rule

LATE_DETAIL = "event time older than its symbol's max event time minus the allowed lateness"


DUPLICATE = "duplicate"


PREVIOUS = "_previous_max"


def _with_previous_max(ticks: DataFrame, before: Mapping[str, datetime]) -> DataFrame:
    """Add ``_previous_max``: the symbol's latest valid event time before this batch (a broadcast
    join of literal rows: a map or CASE over every symbol would be a scan per row)."""
    if not before:
        return ticks.withColumn(PREVIOUS, F.lit(None).cast("timestamp"))
    known = ticks.sparkSession.range(1).select(
        F.inline(
            F.array(
                *[
                    F.struct(F.lit(symbol).alias("_symbol"), F.lit(moment).alias(PREVIOUS))
                    for symbol, moment in sorted(before.items())
                ]
            )
        )
    )
    joined = ticks.join(F.broadcast(known), F.col("symbol") == F.col("_symbol"), "left")
    return joined.drop("_symbol")


def tag_ticks(
    ticks: DataFrame,
    expectations: Sequence[Expectation],
    before: Mapping[str, datetime],
    lateness_s: int,
    preset: Column | None = None,
) -> DataFrame:
    """Add ``outcome``: the first failed rule, ``late``, ``duplicate``, or null (goes to silver).

    A non-null ``preset`` (e.g. the record did not decode) is the row's outcome as it is; such
    rows take no part in the lateness and duplicate checks.

    Lateness is judged per symbol, in Kafka order, against the symbol's latest valid event time
    read before (``before`` carries it across batches), so a tick is late or on time whatever
    micro-batch it lands in. Per symbol, not per partition: a partition holds many symbols, and
    a producer publishing one symbol's hour of backfill after another's would otherwise make the
    second one's ticks late against the first's. Of on-time ticks sharing (symbol, timestamp)
    the first read wins.
    """
    outcome = first_failed_rule(expectations)
    tagged = ticks.withColumn("outcome", outcome if preset is None else F.coalesce(preset, outcome))
    valid = F.col("outcome").isNull()
    earlier = (
        Window.partitionBy("symbol")
        .orderBy("kafka_partition", "kafka_offset")
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    tagged = _with_previous_max(tagged, before)
    seen = F.greatest(F.max(F.when(valid, F.col("timestamp"))).over(earlier), F.col(PREVIOUS))
    limit = seen - F.make_dt_interval(secs=F.lit(lateness_s))
    late = valid & F.coalesce(F.col("timestamp") < limit, F.lit(False))
    tagged = tagged.withColumn(
        "outcome", F.when(late, F.lit(LATE_RULE)).otherwise(F.col("outcome"))
    ).drop(PREVIOUS)
    first_read = Window.partitionBy("symbol", "timestamp", F.col("outcome").isNull()).orderBy(
        "kafka_partition", "kafka_offset"
    )
    repeated = F.col("outcome").isNull() & (F.row_number().over(first_read) > 1)
    return tagged.withColumn(
        "outcome", F.when(repeated, F.lit(DUPLICATE)).otherwise(F.col("outcome"))
    )


def with_rule_detail(rows: DataFrame, expectations: Sequence[Expectation]) -> DataFrame:
    """Add ``rule`` (the outcome) and ``detail`` (what the rule checks) to quarantined rows."""
    described = [(e.name, e.description) for e in expectations] + [(LATE_RULE, LATE_DETAIL)]
    details = F.create_map(*[F.lit(text) for pair in described for text in pair])
    return rows.withColumn("rule", F.col("outcome")).withColumn("detail", details[F.col("outcome")])


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
