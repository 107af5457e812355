"""SQL over the lake without Spark: one engine interface, DuckDB over the Iceberg tables by default.

Every engine speaks the same dialect subset (ANSI ``SELECT`` with ``min_by``/``max_by``, window
functions, ``LIMIT ?``), names lake tables as ``namespace.table`` and binds parameters as ``?``
(qmark) placeholders: values are never formatted into SQL, so a Trino engine drops in unchanged.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, Protocol

import duckdb
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

from finlake.config import FinlakeSettings
from finlake.errors import ConfigurationError, FinlakeError
from finlake.lake.connection import open_catalog

_TABLE_REF = re.compile(r"\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\b", re.IGNORECASE)

Row = tuple[Any, ...]
QueryResult = tuple[list[str], list[Row]]


class QueryError(FinlakeError, ValueError):
    """A query could not be run (bad SQL, unknown table)."""


class TableNotFoundError(QueryError, LookupError):
    """The SQL names a lake table that the catalog does not have (yet)."""


class Engine(Protocol):
    """What the query layer needs from an engine: bound SQL, and a cheap change token per table."""

    name: str

    def query(self, sql: str, params: Sequence[object] = ()) -> QueryResult:
        """(column names, rows) of ``sql`` with ``?`` placeholders bound to ``params``."""
        ...

    def snapshot_id(self, table: str) -> int | None:
        """Current Iceberg snapshot id of ``namespace.table`` (None: no snapshot yet)."""
        ...


def lake_catalog(settings: FinlakeSettings) -> Catalog:
    """The catalog Spark writes to: SQLite locally, PostgreSQL + S3 under the Trino profile."""
    return open_catalog(settings)


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


def _quoted_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBEngine:
    """DuckDB over the Iceberg tables of the catalog: one view per table, rebound on new commits."""

    name = "duckdb"

    def __init__(self, settings: FinlakeSettings, *, metadata_ttl_s: float = 0.0) -> None:
        settings.catalog_db.parent.mkdir(parents=True, exist_ok=True)
        self.catalog = lake_catalog(settings)
        self.connection = duckdb_connection()
        # How long a bound view may serve before the catalog is asked again; snapshot_id() always
        # asks, and rebinds, so a caller that watches snapshots never reads an older one.
        self.metadata_ttl_s = metadata_ttl_s
        self._bound: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._clock: Callable[[], float] = time.monotonic

    def _namespaces(self) -> set[str]:
        return {namespace[0].lower() for namespace in self.catalog.list_namespaces()}

    def _bind_table(self, namespace: str, table: str) -> int | None:
        try:
            loaded = self.catalog.load_table((namespace, table))
        except (NoSuchTableError, NoSuchNamespaceError) as error:
            raise TableNotFoundError(f"no table {namespace}.{table} in the lake") from error
        location = loaded.metadata_location
        key = (namespace.lower(), table.lower())
        previous = self._bound.get(key)
        if previous is None or previous[0] != location:
            self.connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{key[0]}"')
            self.connection.execute(
                f'CREATE OR REPLACE VIEW "{key[0]}"."{key[1]}" AS '
                f"SELECT * FROM iceberg_scan({_quoted_literal(location)})"
            )
        self._bound[key] = (location, self._clock())
        return loaded.metadata.current_snapshot_id

    def _bind(self, sql: str) -> None:
        references = {(ns.lower(), table.lower()) for ns, table in _TABLE_REF.findall(sql)}
        now = self._clock()
        stale = [
            ref
            for ref in references
            if ref not in self._bound or now - self._bound[ref][1] >= self.metadata_ttl_s
        ]
        if not stale:
            return
        namespaces = self._namespaces()
        for namespace, table in stale:
            if namespace in namespaces:
                self._bind_table(namespace, table)

    def query(self, sql: str, params: Sequence[object] = ()) -> QueryResult:
        """(column names, rows) of ``sql``; ``?`` placeholders bound to ``params``."""
        with self._lock:
            self._bind(sql)
        cursor = self.connection.cursor()  # one cursor per call: callers run on many threads
        try:
            result = cursor.execute(sql, list(params))
            if result.description is None:
                return [], []
            # Through Arrow: its UTC datetimes are several times cheaper than DuckDB's pytz ones.
            table = result.to_arrow_table()
            columns = [column.to_pylist() for column in table.columns]
            return table.column_names, list(zip(*columns, strict=True))
        except duckdb.Error as error:
            raise QueryError(str(error).splitlines()[0]) from error
        finally:
            cursor.close()

    def snapshot_id(self, table: str) -> int | None:
        """Current snapshot id of ``namespace.table``, read from the catalog (view rebound)."""
        namespace, _, name = table.partition(".")
        with self._lock:
            return self._bind_table(namespace, name)


EngineFactory = Callable[[FinlakeSettings], Engine]


def _trino_engine(settings: FinlakeSettings) -> Engine:
    # Imported here: the Trino engine reuses this module's errors.
    from finlake.trino_engine import TrinoEngine

    return TrinoEngine(settings.trino)


ENGINES: dict[str, EngineFactory] = {
    "duckdb": lambda settings: DuckDBEngine(settings, metadata_ttl_s=1.0),
    "trino": _trino_engine,
}


def build_engine(name: str, settings: FinlakeSettings) -> Engine:
    """The engine registered under ``name`` (``duckdb``; others register themselves here)."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown query engine {name!r}; known: {', '.join(sorted(ENGINES))}"
        ) from None
    return factory(settings)


class LakeQuery:
    """Runs SQL that names lake tables as ``namespace.table`` (e.g. ``market.ohlc_1h``)."""

    def __init__(self, settings: FinlakeSettings) -> None:
        self.engine = DuckDBEngine(settings)
        self.catalog = self.engine.catalog
        self.connection = self.engine.connection

    def run(self, sql: str, params: Sequence[object] = ()) -> QueryResult:
        """(column names, rows) of ``sql``."""
        return self.engine.query(sql, params)
