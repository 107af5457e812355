"""Lake and Kafka I/O for the Spark jobs: table creation, idempotent appends, bar merges, one-row
frames, the Kafka stream source."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from py4j.protocol import Py4JJavaError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, MapType, StructType
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from finlake.config import FinlakeSettings
from finlake.lake.connection import lake_connection
from finlake.lake.table_spec import TableSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

MARKER = "finlake.batch"
TOPIC_PROPERTY = "finlake.topic"
"""The Kafka topic a marked commit's batch read (a resume finds the batches of a checkpoint
that never recorded one by it)."""
FETCH_MAX_WAIT_MS = 20
"""The Kafka source's fetch wait. A task's consumer, reused from the previous micro-batch, seeks
to the batch's first offset while its fetch of the offsets after the last batch is still parked
at the broker; the client's default of 500 ms then held every task of a small batch for that
long. 20 ms costs an idle consumer a few more requests, only while a task reads."""


def ensure_tables(
    spark: SparkSession, settings: FinlakeSettings, specs: tuple[TableSpec, ...]
) -> None:
    """Create the namespaces and tables that do not exist yet; add missing columns to the rest."""
    catalog = settings.spark.catalog
    lake = lake_connection(settings)
    # Local disk by default; the shared S3 warehouse under `finlake stack up --with trino`.
    warehouse = settings.warehouse if lake.is_local else lake.warehouse
    for namespace in sorted({spec.identifier.split(".")[0] for spec in specs}):
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {catalog}.{namespace}")
    for spec in specs:
        spark.sql(spec.create_sql(catalog, warehouse))
        if order := spec.order_sql(catalog):  # Spark's CREATE TABLE cannot declare a sort order
            spark.sql(order)
        # A table an older release made gets the columns added since (nulls for its rows).
        if added := spec.add_columns_sql(catalog, spark.table(spec.qualified(catalog)).columns):
            spark.sql(added)


def kafka_stream(
    spark: SparkSession,
    bootstrap: str,
    topic: str,
    *,
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
) -> DataFrame:
    """A streaming read of ``topic``, kept going when retention deleted unread records (the gap
    shows in the offsets)."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", starting_offsets)
        .option("failOnDataLoss", "false")
        .option("kafka.fetch.max.wait.ms", str(FETCH_MAX_WAIT_MS))
        # Record headers carry what the contract has no field for (a replay file's extra columns).
        .option("includeHeaders", "true")
    )
    if max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", max_offsets_per_trigger)
    return reader.load()


def has_marker(spark: SparkSession, table: str, marker: str) -> bool:
    """Whether a snapshot of ``table`` was committed with ``marker`` (the batch already landed)."""
    found = spark.sql(
        f"SELECT 1 FROM {table}.snapshots WHERE summary['{MARKER}'] = '{marker}' LIMIT 1"
    ).collect()
    return bool(found)


def landed(
    spark: SparkSession, specs: tuple[TableSpec, ...], catalog: str, marker: str
) -> dict[str, int | None]:
    """The tables holding a commit with ``marker``, each with that commit's parent snapshot id.

    One query for every table; the parent id is the table as it was before the commit (None:
    the commit was the table's first).
    """
    parts = [
        f"SELECT '{spec.identifier}' AS name, parent_id FROM {spec.qualified(catalog)}.snapshots "
        f"WHERE summary['{MARKER}'] = '{marker}'"
        for spec in specs
    ]
    return {row.name: row.parent_id for row in spark.sql(" UNION ALL ".join(parts)).collect()}


def append_once(
    rows: DataFrame,
    table: TableSpec,
    catalog: str,
    marker: str,
    landed: Mapping[str, int | None] | None = None,
    *,
    topic: str | None = None,
) -> bool:
    """Append ``rows`` unless a commit with ``marker`` exists; True when appended now.

    ``landed`` (from ``landed``) spares the look-up of the table's commits; ``topic``, the one
    the batch read, is kept with the commit.
    """
    name = table.qualified(catalog)
    done = table.identifier in landed if landed is not None else None
    if done is None:
        done = has_marker(rows.sparkSession, name, marker)
    if done:
        return False
    writer = rows.select(*table.column_names).writeTo(name)
    writer = writer.option(f"snapshot-property.{MARKER}", marker)
    if topic is not None:
        writer = writer.option(f"snapshot-property.{TOPIC_PROPERTY}", topic)
    writer.append()
    return True


def current_snapshot(spark: SparkSession, table: TableSpec, catalog: str) -> int | None:
    """The id of the table's current snapshot (None while it has none)."""
    rows = spark.sql(
        f"SELECT snapshot_id FROM {table.qualified(catalog)}.refs WHERE name = 'main'"
    ).collect()
    return int(rows[0].snapshot_id) if rows else None


def committed_at(
    spark: SparkSession, table: TableSpec, catalog: str, snapshot: int | None
) -> datetime | None:
    """When ``snapshot`` of the table was committed (by its writer's clock), in UTC."""
    if snapshot is None:
        return None
    rows = spark.sql(
        f"SELECT unix_micros(committed_at) AS micros FROM {table.qualified(catalog)}.snapshots "
        f"WHERE snapshot_id = {int(snapshot)}"
    ).collect()
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=rows[0].micros)


def as_of(spark: SparkSession, table: TableSpec, catalog: str, snapshot: int | None) -> DataFrame:
    """The table as of ``snapshot`` (None: before its first commit, so empty)."""
    name = table.qualified(catalog)
    if snapshot is None:
        return spark.table(name).limit(0)
    return spark.sql(f"SELECT * FROM {name} VERSION AS OF {snapshot}")


def latest_value(table: DataFrame, column: str) -> Any:
    """The largest ``column`` value of an Iceberg table, or None when it is empty.

    Iceberg answers MIN/MAX from the data files' column statistics (aggregate push-down), so
    no data file is read while every file has them.
    """
    return table.agg(F.max(column)).collect()[0][0]


def append_newer_bars(
    bars: DataFrame, table: TableSpec, catalog: str, snapshot: int | None, first: Any
) -> None:
    """Append bars starting at ``first`` or later to a table that has none as of ``snapshot``.

    Fails (Iceberg's ValidationException) when a commit after ``snapshot`` added a bar starting
    at ``first`` or later, as a concurrent MERGE would.
    """
    writer = (
        bars.select(*table.column_names)
        .writeTo(table.qualified(catalog))
        .option("isolation-level", "serializable")
    )
    if snapshot is not None:
        writer = writer.option("validate-from-snapshot-id", str(snapshot))
    # Overwrites nothing (no stored bar is that recent); the filter is what is validated.
    writer.overwrite(F.col("window_start") >= F.lit(first))


CONFLICT = "org.apache.iceberg.exceptions.ValidationException"
"""What Iceberg raises when a commit of another writer since the write began conflicts with it
(not retried by Iceberg itself, unlike a commit that merely lost the race to the catalog)."""


def is_write_conflict(error: BaseException) -> bool:
    """Whether a failed write conflicted with another writer's commit (trying again can pass)."""
    java = getattr(error, "java_exception", None) if isinstance(error, Py4JJavaError) else None
    while java is not None:
        if java.getClass().getName() == CONFLICT:
            return True
        java = java.getCause()
    return False


def retrying_conflicts(write: Callable[[], T], attempts: int = 5) -> T:
    """Run ``write``, again after a short random wait while it conflicts with another writer's
    commit (the stream's gold merges against the hourly batch's or the maintenance's rewrite of
    the same day): ``write`` must read the table afresh each time."""
    retrying = Retrying(
        retry=retry_if_exception(is_write_conflict),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.5, max=8),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    return retrying(write)


def merge_bars(
    bars: DataFrame, table: TableSpec, catalog: str, *, read_at: datetime | None = None
) -> int:
    """Upsert bars on (symbol, window_start): a recomputed window replaces the stored one.

    Returns how many bars were given (with ``read_at``, some may have been kept as stored).
    When every bar is newer than the table's latest window,
    they are appended instead (a MERGE costs a join and a rewrite), with the same protection
    against a concurrent writer (e.g. the market batch) that a MERGE has: the commit fails if
    a bar at or after the first new window was committed since the table was looked at.

    ``read_at``: the bars were computed from the silver snapshot committed then (the market
    batch). A stored bar updated after it is left as it is: the stream computed it after its
    own silver commit, from every tick of that snapshot, so it is at least as recent.
    """
    spark = bars.sparkSession
    # Spark 4.1 cannot plan a MERGE whose source still reads an Iceberg table through the
    # DataFrame API ("No plan for TableReference"); bars are few, so materialize them first.
    bars = bars.localCheckpoint()
    merged, first = bars.agg(F.count(F.lit(1)), F.min("window_start")).collect()[0]
    if not merged:
        return 0

    def write() -> None:
        snapshot = current_snapshot(spark, table, catalog)
        stored = latest_value(as_of(spark, table, catalog, snapshot), "window_start")
        if stored is None or stored < first:
            append_newer_bars(bars, table, catalog, snapshot, first)
            return
        view = f"bars_{table.identifier.replace('.', '_')}"
        bars.createOrReplaceTempView(view)
        spark.sql(
            f"""
            MERGE INTO {table.qualified(catalog)} AS t
            USING {view} AS s
            ON t.symbol = s.symbol AND t.window_start = s.window_start
            WHEN MATCHED{_stored_no_later_than(read_at)} THEN UPDATE SET *
            WHEN NOT MATCHED THEN INSERT *
            """
        )

    # Bars are recomputed windows: writing them again over what another writer committed in
    # between is the same upsert (and, with ``read_at``, keeps a newer stored bar as it is).
    retrying_conflicts(write)
    return int(merged)


def one_row(spark: SparkSession, row: Mapping[str, Any], schema: StructType) -> DataFrame:
    """A DataFrame of ``row`` (values by field name; a dict for a map) in ``schema``.

    Built from literals: ``createDataFrame`` from Python rows starts Python workers to decode
    them (a second on a fresh session).
    """
    return spark.range(1).select(
        *[_literal(row[field.name], field.dataType).alias(field.name) for field in schema]
    )


def _literal(value: object, data_type: DataType) -> Column:
    if isinstance(value, dict) and isinstance(data_type, MapType):
        entries = [F.lit(part) for pair in value.items() for part in pair]
        return (F.create_map(*entries) if entries else F.expr("map()")).cast(data_type)
    return F.lit(value).cast(data_type)


def _stored_no_later_than(read_at: datetime | None) -> str:
    if read_at is None:
        return ""
    moment = read_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%fZ")
    return f" AND t.updated_at <= TIMESTAMP '{moment}'"
