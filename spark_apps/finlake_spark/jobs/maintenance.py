"""Daily table maintenance: compaction and snapshot expiry (Iceberg procedures)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from finlake.contracts.medallion_pipeline import TABLE
from finlake.spark.session import build_session
from finlake_spark.config import SparkAppSettings

log = logging.getLogger(__name__)


def maintenance_statements(
    catalog: str, table: str, *, target_file_size_mb: int, expire_before: datetime
) -> list[str]:
    """The Iceberg procedure calls for one table (names are checked, never free text)."""
    if not re.fullmatch(TABLE, table) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", catalog):
        raise ValueError(f"not a table name: {catalog}.{table}")
    target_bytes = target_file_size_mb * 1024 * 1024
    cutoff = expire_before.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return [
        f"CALL {catalog}.system.rewrite_data_files(table => '{table}', "
        f"options => map('target-file-size-bytes', '{target_bytes}'))",
        f"CALL {catalog}.system.expire_snapshots(table => '{table}', "
        f"older_than => TIMESTAMP '{cutoff}', retain_last => 1)",
    ]


def run(
    settings: SparkAppSettings,
    *,
    tables: Sequence[str],
    target_file_size_mb: int,
    snapshot_retention: timedelta,
    now: datetime | None = None,
) -> None:
    """Compact and expire every table that exists (a table not created yet is skipped, logged)."""
    spark = build_session(settings, app_name="finlake-maintenance")
    catalog = settings.spark.catalog
    expire_before = (now or datetime.now(UTC)) - snapshot_retention
    for table in tables:
        if not spark.catalog.tableExists(f"{catalog}.{table}"):
            log.warning("maintenance: %s.%s does not exist yet, skipped", catalog, table)
            continue
        for statement in maintenance_statements(
            catalog, table, target_file_size_mb=target_file_size_mb, expire_before=expire_before
        ):
            spark.sql(statement).collect()
        log.info("maintenance: %s.%s compacted, snapshots before %s expired", catalog, table,
                 expire_before.isoformat())  # fmt: skip
