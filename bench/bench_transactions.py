"""Transactions hourly batch: rows/s of the Spark batch against DuckDB doing the same work.

Generates ``--rows`` transactions (``finlake transactions generate``), uploads them into bronze of a
fresh lake in a temp home, then, on the same bronze, times (1) the Spark batch of
``finlake pipeline run transactions --once`` on local[2] (session start excluded) and (2) as the
peer, DuckDB reading the same Iceberg bronze, applying the same SQL rules
(``finlake.transactions.rules``), deduping on transaction_id and computing the same hourly and
daily summaries, writing validated, quarantine and summary as Parquet. Prints rows/s of both and
their ratio; the goal is Spark within 2x of DuckDB.

    uv run --frozen python bench/bench_transactions.py [--rows 1000000 10000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings
from finlake.lake.tables import TRANSACTIONS_RAW
from finlake.query import duckdb_connection
from finlake.transactions.generate import write_transactions_csv
from finlake.transactions.rules import failed_rule_sql, typed_select_sql
from finlake.transactions.upload import open_lake, upload_transactions
from finlake_spark.jobs.transactions_run import batch_session, run_once

GOAL_RATIO = 2.0
LINEAGE = ("upload_id", "file_name", "row_number", "received_at", "upload_issue", "raw_record")
VALIDATED = (
    "transaction_id, account_id, card_id, timestamp, amount, currency, merchant, "
    "merchant_category, country, channel, entry_mode, status, is_fraud, upload_id, row_number, "
    "received_at, now() AS validated_at"
)
QUARANTINE = (
    "upload_id, file_name, row_number, received_at, in_transaction_id, in_account_id, in_card_id, "
    "in_timestamp, in_amount, in_currency, in_merchant, in_merchant_category, in_country, "
    "in_channel, in_entry_mode, in_status, in_is_fraud, upload_issue, raw_record, "
    "coalesce(CAST(timestamp AS DATE), CAST(received_at AS DATE)) AS event_date, rule, "
    "now() AS quarantined_at"
)


def _summary_sql(width: str) -> str:
    keys = "account_id, window_start, currency"
    parts = (
        f"SELECT account_id, date_trunc('{width}', timestamp) AS window_start, currency, "
        "merchant_category, channel, count(*) AS n, CAST(sum(amount) AS DECIMAL(28,2)) AS total, "
        "max(amount) AS largest, sum(CASE WHEN status = 'declined' THEN 1 ELSE 0 END) AS declined "
        "FROM validated GROUP BY ALL"
    )
    return f"""
        WITH parts AS ({parts}),
        totals AS (SELECT {keys}, sum(n) AS transaction_count,
                          CAST(sum(total) AS DECIMAL(28,2)) AS amount_sum,
                          max(largest) AS amount_max, sum(declined) AS declined_count
                   FROM parts GROUP BY ALL),
        categories AS (SELECT {keys},
                   map_from_entries(list(struct_pack(k := merchant_category, v := n))) AS cc,
                   map_from_entries(list(struct_pack(k := merchant_category, v := total))) AS ca
                   FROM (SELECT {keys}, merchant_category, sum(n) AS n,
                                CAST(sum(total) AS DECIMAL(28,2)) AS total
                         FROM parts GROUP BY ALL) GROUP BY ALL),
        channels AS (SELECT {keys},
                   map_from_entries(list(struct_pack(k := channel, v := n))) AS hc,
                   map_from_entries(list(struct_pack(k := channel, v := total))) AS ha
                   FROM (SELECT {keys}, channel, sum(n) AS n,
                                CAST(sum(total) AS DECIMAL(28,2)) AS total
                         FROM parts GROUP BY ALL) GROUP BY ALL)
        SELECT account_id, '{width}' AS granularity, window_start,
               window_start + INTERVAL 1 {width} AS window_end, currency, transaction_count,
               amount_sum, amount_max, declined_count, cc AS count_by_category,
               ca AS amount_by_category, hc AS count_by_channel, ha AS amount_by_channel,
               now() AS updated_at
        FROM totals JOIN categories USING ({keys}) JOIN channels USING ({keys})
    """


def duckdb_peer(settings: FinlakeSettings, out: Path) -> tuple[int, float]:
    """The same rules, dedupe and summaries in DuckDB over the same bronze; (rows, seconds)."""
    catalog, _ = open_lake(settings)
    location = catalog.load_table(TRANSACTIONS_RAW.identifier).metadata_location
    connection = duckdb_connection()
    connection.execute("SET threads = 2")
    began = time.monotonic()
    connection.execute(f"CREATE VIEW bronze AS SELECT * FROM iceberg_scan('{location}')")
    typed = typed_select_sql("bronze", LINEAGE, "TIMESTAMPTZ")
    connection.execute(
        f"CREATE TABLE tagged AS SELECT *, {failed_rule_sql()} AS rule FROM ({typed})"
    )
    connection.execute(
        "CREATE TABLE passed AS SELECT *, row_number() OVER (PARTITION BY transaction_id "
        "ORDER BY received_at, upload_id, row_number) AS rank FROM tagged WHERE rule IS NULL"
    )
    connection.execute(f"CREATE TABLE validated AS SELECT {VALIDATED} FROM passed WHERE rank = 1")
    connection.execute(f"COPY validated TO '{out / 'validated.parquet'}'")
    duplicates = QUARANTINE.replace(" rule,", " 'duplicate_transaction_id' AS rule,")
    connection.execute(
        f"COPY (SELECT {QUARANTINE} FROM tagged WHERE rule IS NOT NULL UNION ALL "
        f"SELECT {duplicates} FROM passed WHERE rank > 1) TO '{out / 'quarantine.parquet'}'"
    )
    connection.execute(
        f"COPY (SELECT * FROM ({_summary_sql('hour')}) UNION ALL "
        f"SELECT * FROM ({_summary_sql('day')})) "
        f"TO '{out / 'summary.parquet'}'"
    )
    seconds = time.monotonic() - began
    [(rows,)] = connection.execute("SELECT count(*) FROM tagged").fetchall()
    return int(rows), seconds


def jvm_seconds(spark: SparkSession) -> tuple[float, float]:
    """The driver JVM's JIT compile time (CPU, all compiler threads) and GC pause time so far."""
    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory  # type: ignore[union-attr]
    compiling = management.getCompilationMXBean().getTotalCompilationTime()
    collecting = sum(bean.getCollectionTime() for bean in management.getGarbageCollectorMXBeans())
    return compiling / 1000, collecting / 1000


def bench(rows: int, work: Path) -> float:
    """One size: generate, upload, Spark batch, DuckDB peer; returns the time ratio."""
    home = work / f"home-{rows}"
    settings = FinlakeSettings.model_validate(
        {"home": home, "spark": {"master": "local[2]", "shuffle_partitions": 2}}
    )
    csv = work / f"transactions-{rows}.csv"
    began = time.monotonic()
    start = (datetime.now(UTC) - timedelta(days=31)).replace(hour=0, minute=0, second=0)
    write_transactions_csv(
        csv, rows=rows, accounts=max(rows // 100, 10), fraud_rate=0.01, start=start, days=30
    )
    size_mb = csv.stat().st_size / 1e6
    print(f"[{rows:,}] generated {size_mb:,.0f} MB in {time.monotonic() - began:.0f} s")
    catalog, warehouse = open_lake(settings)
    began = time.monotonic()
    with csv.open("rb") as stream:
        upload_transactions(catalog, warehouse, stream, file_name=csv.name)
    upload_s = time.monotonic() - began
    print(f"[{rows:,}] upload: {upload_s:.1f} s, {rows / upload_s:,.0f} rows/s (PyIceberg)")

    spark = batch_session(settings, app_name="bench-transactions")
    try:
        jvm_before = jvm_seconds(spark)
        began = time.monotonic()
        result = run_once(settings, spark=spark)
        spark_s = time.monotonic() - began
        compiling, collecting = (
            after - before for after, before in zip(jvm_seconds(spark), jvm_before, strict=True)
        )
    finally:
        spark.stop()
    counts = result.counts
    print(
        f"[{rows:,}] spark batch: {spark_s:.1f} s, {counts.rows_in / spark_s:,.0f} rows/s "
        f"({counts.validated_rows:,} validated, {counts.quarantined_rows:,} quarantined, "
        f"{counts.summary_rows:,} summary windows); meanwhile the JVM spent {compiling:.1f} s "
        f"of CPU compiling (JIT) and paused {collecting:.1f} s for GC"
    )
    out = work / f"duckdb-{rows}"
    out.mkdir()
    duck_rows, duck_s = duckdb_peer(settings, out)
    print(f"[{rows:,}] duckdb peer: {duck_s:.1f} s, {duck_rows / duck_s:,.0f} rows/s")
    ratio = spark_s / duck_s
    verdict = "meets" if ratio <= GOAL_RATIO else "misses"
    print(
        f"[{rows:,}] ratio spark/duckdb time: {ratio:.2f}x ({verdict} the goal of "
        f"{GOAL_RATIO:.0f}x)"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="finlake-bench-transactions-") as folder:
        ratios = {rows: bench(rows, Path(folder)) for rows in args.rows}
    summary = ", ".join(f"{rows:,} rows {ratio:.2f}x" for rows, ratio in ratios.items())
    print(f"spark/duckdb: {summary}; bench took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
