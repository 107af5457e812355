"""The spec of a lake table: columns, partitioning, write layout, and the Spark DDL it implies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Column:
    """One column: Spark SQL type and its documentation."""

    name: str
    type: str
    comment: str


@dataclass(frozen=True)
class TableSpec:
    """One table: ``namespace.table``, location under the warehouse, columns, partitioning."""

    identifier: str
    location: str
    columns: tuple[Column, ...]
    partition_by: str | None
    comment: str
    append_only: bool = False
    # Columns every write sorts its rows by within a partition (Iceberg sort order), and the
    # Parquet row-group size: point reads (one symbol's day) then skip most row groups by stats.
    sort_by: tuple[str, ...] = ()
    row_group_bytes: int | None = None

    @property
    def column_names(self) -> list[str]:
        """Column names in table order."""
        return [column.name for column in self.columns]

    def qualified(self, catalog: str) -> str:
        """``catalog.namespace.table``."""
        return f"{catalog}.{self.identifier}"

    def location_in(self, warehouse: Path | str) -> str:
        """The table's URI under ``warehouse`` (a local folder, or a URI such as ``s3://b/w``)."""
        if isinstance(warehouse, Path):
            return (warehouse / self.location).as_uri()
        return f"{warehouse.rstrip('/')}/{self.location}"

    def create_sql(self, catalog: str, warehouse: Path | str) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for Spark, at the design's location, format v2."""
        columns = ",\n  ".join(
            f"{c.name} {c.type} COMMENT '{c.comment.replace(chr(39), chr(39) * 2)}'"
            for c in self.columns
        )
        partition = f"\nPARTITIONED BY ({self.partition_by})" if self.partition_by else ""
        properties = ", ".join(f"'{key}'='{value}'" for key, value in self.properties.items())
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified(catalog)} (\n  {columns}\n) USING iceberg"
            f"{partition}\nCOMMENT '{self.comment}'"
            f"\nLOCATION '{self.location_in(warehouse)}'"
            f"\nTBLPROPERTIES ({properties})"
        )

    def add_columns_sql(self, catalog: str, present: Iterable[str]) -> str | None:
        """``ALTER TABLE ... ADD COLUMNS`` for the columns a table made by an older release
        lacks (None: it has them all); Iceberg adds them as nulls for the rows it holds."""
        have = {name.lower() for name in present}
        missing = [c for c in self.columns if c.name.lower() not in have]
        if not missing:
            return None
        added = ", ".join(
            f"{c.name} {c.type} COMMENT '{c.comment.replace(chr(39), chr(39) * 2)}'"
            for c in missing
        )
        return f"ALTER TABLE {self.qualified(catalog)} ADD COLUMNS ({added})"

    @property
    def properties(self) -> dict[str, str]:
        """Iceberg table properties: format v2, 128 MB files; appends spread over every core."""
        properties = {"format-version": "2", "write.target-file-size-bytes": "134217728"}
        if self.append_only:
            # A batch's rows mostly share one day: hash distribution by partition would write
            # them in a single task. Unclustered appends use every core (compaction merges files).
            properties |= {"write.distribution-mode": "none", "write.spark.fanout.enabled": "true"}
        if self.row_group_bytes is not None:
            properties["write.parquet.row-group-size-bytes"] = str(self.row_group_bytes)
        return properties

    def order_sql(self, catalog: str) -> str | None:
        """Spark's ``ALTER TABLE`` that makes writes hash by partition and sort by ``sort_by``."""
        if not self.sort_by:
            return None
        return (
            f"ALTER TABLE {self.qualified(catalog)} WRITE DISTRIBUTED BY PARTITION "
            f"LOCALLY ORDERED BY {', '.join(self.sort_by)}"
        )
