"""Transactions bronze -> silver -> gold as DataFrame transforms (no I/O, no session, no config).

The typing and the rules are the SQL of :mod:`finlake.transactions.rules`, so the DuckDB peer of
the benchmark and the upload's preview apply exactly what the batch applies.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from finlake.lake.tables import TRANSACTIONS_QUARANTINE, TRANSACTIONS_VALIDATED
from finlake.transactions.rules import (
    DUPLICATE_DETAIL,
    DUPLICATE_RULE,
    TEXT_COLUMNS,
    TRANSACTION_EXPECTATIONS,
    failed_rule_sql,
    transaction_expectations,
    typed_columns,
)

RULE = "rule"
_DETAILS = {e.name: e.description for e in TRANSACTION_EXPECTATIONS} | {
    DUPLICATE_RULE: DUPLICATE_DETAIL
}
SUMMARY_KEYS = ("window_start", "account_id", "granularity", "currency")
"""A summary row's key, window start first: the lists are collected by sorting on the key, and a
sort settles most comparisons on the first key's 8-byte prefix (account ids share theirs)."""


def with_typed_columns(bronze: DataFrame) -> DataFrame:
    """Bronze's text renamed ``in_<column>``, plus the silver columns parsed from it."""
    renamed = bronze.select(
        *[F.col(c) for c in bronze.columns if c not in TEXT_COLUMNS],
        *[F.col(c).alias(f"in_{c}") for c in TEXT_COLUMNS],
    )
    return renamed.select(
        "*", *[F.expr(sql).alias(name) for name, sql in typed_columns("TIMESTAMP").items()]
    )


def with_failed_rule(typed: DataFrame) -> DataFrame:
    """Add ``rule``: the first transaction expectation the row fails, or null."""
    return typed.withColumn(RULE, F.expr(failed_rule_sql(transaction_expectations("spark"))))


def with_duplicate_rank(passed: DataFrame) -> DataFrame:
    """Add ``_rank`` (1 for the first-received row of each transaction_id) and ``_copies`` (the
    rows holding that id): one window, one sort."""
    first_received = Window.partitionBy("transaction_id").orderBy(
        "received_at", "upload_id", "row_number"
    )
    whole = first_received.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    return passed.select(
        "*",
        F.row_number().over(first_received).alias("_rank"),
        F.count(F.lit(1)).over(whole).alias("_copies"),
    )


def to_validated_rows(rows: DataFrame, validated_at: datetime) -> DataFrame:
    """Silver rows in ``transactions.validated`` column order."""
    return rows.withColumn("validated_at", F.lit(validated_at)).select(
        *TRANSACTIONS_VALIDATED.column_names
    )


def _detail(rule: Column) -> Column:
    details = F.create_map(*[x for pair in _DETAILS.items() for x in map(F.lit, pair)])
    return details[rule]


def to_quarantine_rows(rows: DataFrame, quarantined_at: datetime) -> DataFrame:
    """Failed rows as uploaded (text), with rule, detail and event date."""
    return rows.select(
        *[F.col(c) for c in ("upload_id", "file_name", "row_number", "received_at")],
        *[F.col(f"in_{c}").alias(c) for c in TEXT_COLUMNS],
        "upload_issue",
        "raw_record",
        F.coalesce(F.to_date("timestamp"), F.to_date("received_at")).alias("event_date"),
        F.col(RULE),
        _detail(F.col(RULE)).alias("detail"),
        F.lit(quarantined_at).alias("quarantined_at"),
    ).select(*TRANSACTIONS_QUARANTINE.column_names)


def _by(parts: str, key: str, value: str, zero: str) -> Column:
    # Fold the (category, channel) parts of one window into one map entry per key. Most windows
    # hold each key once: their map is the two arrays zipped (compiled code), and only the others
    # take the lambdas (interpreted: a fifth of the summary's compute when every window did).
    entry = (
        f"struct(k, aggregate(filter({parts}, p -> p.{key} = k), {zero}, "
        f"(acc, p) -> CAST(acc + p.{value} AS {'bigint' if zero == '0L' else 'decimal(28,2)'})))"
    )
    return F.expr(
        f"CASE WHEN size(array_distinct({parts}.{key})) = size({parts}) "
        f"THEN map_from_arrays({parts}.{key}, {parts}.{value}) "
        f"ELSE map_from_entries(transform(array_distinct({parts}.{key}), k -> {entry})) END"
    )


def to_account_summaries(
    validated: DataFrame, updated_at: datetime, partitions: int | None = None
) -> DataFrame:
    """Gold rows per account, currency, hour and day: counts and sums by category and channel.

    ``partitions``: how many partitions to hash the rows into by account (default: the session's
    shuffle partitions). It is the only shuffle: every grouping below has account_id in its keys,
    so Spark keeps this partitioning for all of them; and a repartition to a set number is never
    coalesced into fewer tasks by adaptive execution (these rows are few bytes but much work).
    """
    shuffle = validated.sparkSession.conf.get("spark.sql.shuffle.partitions") or "2"
    count = partitions or int(shuffle)
    hour = F.date_trunc("hour", "timestamp")
    windows = F.explode(
        F.array(
            F.struct(F.lit("hour").alias("granularity"), hour.alias("window_start")),
            F.struct(
                F.lit("day").alias("granularity"), F.date_trunc("day", hour).alias("window_start")
            ),
        )
    )
    rows = validated.repartition(count, "account_id").select(
        "account_id",
        "currency",
        "merchant_category",
        "channel",
        "amount",
        F.when(F.col("status") == "declined", 1).otherwise(0).alias("declined"),
        windows.alias("window"),
    )
    # Both granularities in one pass: each row counts in its hour and in its day.
    parts = (
        rows.select("*", "window.granularity", "window.window_start")
        .groupBy(*SUMMARY_KEYS, "merchant_category", "channel")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("amount").cast("decimal(28,2)").alias("total"),
            F.max("amount").alias("largest"),
            F.sum("declined").cast("bigint").alias("declined"),
        )
    )
    grouped = parts.groupBy(*SUMMARY_KEYS).agg(
        F.sum("n").alias("transaction_count"),
        F.sum("total").cast("decimal(28,2)").alias("amount_sum"),
        F.max("largest").alias("amount_max"),
        F.sum("declined").alias("declined_count"),
        F.collect_list(F.struct("merchant_category", "channel", "n", "total")).alias("parts"),
    )
    zero = "CAST(0 AS decimal(28,2))"
    return grouped.select(
        "account_id",
        "granularity",
        "window_start",
        F.expr(
            "CASE granularity WHEN 'hour' THEN window_start + INTERVAL 1 HOUR "
            "ELSE window_start + INTERVAL 1 DAY END"
        ).alias("window_end"),
        "currency",
        "transaction_count",
        "amount_sum",
        "amount_max",
        "declined_count",
        _by("parts", "merchant_category", "n", "0L").alias("count_by_category"),
        _by("parts", "merchant_category", "total", zero).alias("amount_by_category"),
        _by("parts", "channel", "n", "0L").alias("count_by_channel"),
        _by("parts", "channel", "total", zero).alias("amount_by_channel"),
        F.lit(updated_at).alias("updated_at"),
    )
