"""SQL over the lake without Spark: DuckDB reading the Iceberg tables the shared catalog lists."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import duckdb
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError

from finlake.config import FinlakeSettings
from finlake.errors import FinlakeError

_TABLE_REF = re.compile(r"\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\b", re.IGNORECASE)


class QueryError(FinlakeError, ValueError):
    """A query could not be run (bad SQL, unknown table)."""


def lake_catalog(settings: FinlakeSettings) -> Catalog:
    """The Iceberg catalog Spark writes to (same name, same SQLite file, same warehouse)."""
    return SqlCatalog(
        settings.spark.catalog,
        uri=f"sqlite:///{settings.catalog_db}",
        warehouse=settings.warehouse.as_uri(),
    )


def _extension(name: str) -> str:
    folder = resources.files(f"duckdb_extension_{name}").joinpath("extensions")
    [version] = [entry for entry in folder.iterdir() if entry.name.startswith("v")]
    return str(version.joinpath(f"{name}.duckdb_extension"))


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the iceberg extension loaded from its wheel (never downloaded)."""
    connection = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    for name in ("avro", "iceberg"):  # iceberg needs avro
        connection.execute(f"LOAD '{_extension(name)}'")
    connection.execute("SET TimeZone = 'UTC'")
    return connection


class LakeQuery:
    """Runs SQL that names lake tables as ``namespace.table`` (e.g. ``market.ohlc_1h``)."""

    def __init__(self, settings: FinlakeSettings) -> None:
        self.catalog = lake_catalog(settings)
        self.connection = duckdb_connection()

    def _bind(self, sql: str) -> None:
        namespaces = {ns[0] for ns in self.catalog.list_namespaces()}
        for namespace, table in set(_TABLE_REF.findall(sql)):
            if namespace.lower() not in namespaces:
                continue
            try:
                metadata = self.catalog.load_table((namespace, table)).metadata_location
            except NoSuchTableError as error:
                raise QueryError(f"no table {namespace}.{table} in the lake") from error
            self.connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"')
            self.connection.execute(
                f'CREATE OR REPLACE VIEW "{namespace}"."{table}" AS '
                f"SELECT * FROM iceberg_scan('{metadata}')"
            )

    def run(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """(column names, rows) of ``sql``."""
        self._bind(sql)
        try:
            result = self.connection.execute(sql)
        except duckdb.Error as error:
            raise QueryError(str(error).splitlines()[0]) from error
        columns = [description[0] for description in result.description or []]
        return columns, result.fetchall()
