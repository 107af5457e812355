"""Lake I/O for the Spark jobs: table creation, idempotent appends, bar merges."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from finlake.config import FinlakeSettings
from finlake.lake.connection import lake_connection
from finlake.lake.tables import TableSpec

MARKER = "finlake.batch"


def ensure_tables(
    spark: SparkSession, settings: FinlakeSettings, specs: tuple[TableSpec, ...]
) -> None:
    """Create the namespaces and tables that do not exist yet."""
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


def has_marker(spark: SparkSession, table: str, marker: str) -> bool:
    """Whether a snapshot of ``table`` was committed with ``marker`` (the batch already landed)."""
    found = spark.sql(
        f"SELECT 1 FROM {table}.snapshots WHERE summary['{MARKER}'] = '{marker}' LIMIT 1"
    ).collect()
    return bool(found)


def append_once(rows: DataFrame, table: TableSpec, catalog: str, marker: str) -> bool:
    """Append ``rows`` unless a commit with ``marker`` exists; True when appended now."""
    name = table.qualified(catalog)
    if has_marker(rows.sparkSession, name, marker):
        return False
    rows.select(*table.column_names).writeTo(name).option(
        f"snapshot-property.{MARKER}", marker
    ).append()
    return True


def merge_bars(bars: DataFrame, table: TableSpec, catalog: str) -> None:
    """Upsert bars on (symbol, window_start): a recomputed window replaces the stored one."""
    view = f"bars_{table.identifier.replace('.', '_')}"
    # Spark 4.1 cannot plan a MERGE whose source still reads an Iceberg table through the
    # DataFrame API ("No plan for TableReference"); bars are few, so materialize them first.
    bars.localCheckpoint().createOrReplaceTempView(view)
    bars.sparkSession.sql(
        f"""
        MERGE INTO {table.qualified(catalog)} AS t
        USING {view} AS s
        ON t.symbol = s.symbol AND t.window_start = s.window_start
        WHEN MATCHED THEN UPDATE SET *
        WHEN NOT MATCHED THEN INSERT *
        """
    )
