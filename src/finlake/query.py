"""SQL over the lake without Spark: one engine interface, DuckDB over the Iceberg tables by default.

Every engine speaks the same dialect subset (ANSI ``SELECT`` with ``min_by``/``max_by``, window
functions, ``LIMIT ?``), names lake tables as ``namespace.table`` and binds parameters as ``?``
(qmark) placeholders: values are never formatted into SQL, so a Trino engine drops in unchanged.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import sqlalchemy.exc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.table import Table

from finlake.config import FinlakeSettings
from finlake.errors import ConfigurationError, FinlakeError, UnavailableError
from finlake.lake.connection import lake_connection, open_catalog
from finlake.lake.pruning import DataFileStats, ScanShape, plan_files, scan_shape
from finlake.lake.table_spec import TableSpec

_TABLE_REF = re.compile(r"\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\b", re.IGNORECASE)

Row = tuple[Any, ...]
QueryResult = tuple[list[str], list[Row]]


class QueryError(FinlakeError, ValueError):
    """A query could not be run (bad SQL, unknown table)."""


class TableNotFoundError(QueryError, LookupError):
    """The SQL names a lake table that the catalog does not have (yet)."""


class CatalogUnavailableError(UnavailableError, ConnectionError):
    """The lake's catalog database did not answer (down, unreachable, refusing the login)."""


class LakeStorageUnavailableError(UnavailableError, ConnectionError):
    """The files of the lake (table metadata, manifests) could not be read."""


@contextlib.contextmanager
def asking_the_catalog() -> Iterator[None]:
    """Catalog calls inside: the database's failure to answer is a CatalogUnavailableError."""
    try:
        yield
    except sqlalchemy.exc.OperationalError as error:
        first = (str(error.orig or error).strip().splitlines() or [type(error).__name__])[0]
        raise CatalogUnavailableError("the lake's catalog did not answer", cause=first) from error


@contextlib.contextmanager
def reading_the_lake() -> Iterator[None]:
    """Catalog calls and reads of table metadata inside (no writes: a full disk is no outage):
    what ``asking_the_catalog`` maps, and an unreadable metadata or manifest file (the object
    store away) as a LakeStorageUnavailableError."""
    try:
        with asking_the_catalog():
            yield
    except UnavailableError:
        raise
    except OSError as error:
        cause = f"{type(error).__name__}: {error}"
        raise LakeStorageUnavailableError(
            "the lake's storage did not answer", cause=cause
        ) from error


class Engine(Protocol):
    """What the query layer needs from an engine: bound SQL, and a cheap change token per table."""

    name: str

    def query(self, sql: str, params: Sequence[object] = ()) -> QueryResult:
        """(column names, rows) of ``sql`` with ``?`` placeholders bound to ``params``."""
        ...

    def query_arrow(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        """The result of ``sql`` as an Arrow table (no Python value per cell)."""
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
    # GLOBAL: a plain SET holds for this connection only, not for the cursors queries run on.
    connection.execute("SET GLOBAL TimeZone = 'UTC'")
    # Iceberg data files never change once written: their Parquet footers can stay in memory.
    connection.execute("SET parquet_metadata_cache = true")
    return connection


# The zone objects Arrow's to_pylist attaches, per zone name DuckDB gives UTC columns.
_UTC_EPOCHS = {zone: datetime(1970, 1, 1, tzinfo=ZoneInfo(zone)) for zone in ("UTC", "Etc/UTC")}


def python_values(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """``column.to_pylist()``, faster: UTC microsecond timestamps are built from integers, since
    Arrow converts each through its zone (a day of 1-minute bars: ~8 ms a column vs ~0.6), and
    decimals from their text (same digits and exponent)."""
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.unit == "us" and kind.tz in _UTC_EPOCHS:
        epoch = _UTC_EPOCHS[kind.tz]
        micros = column.cast(pa.int64()).to_pylist()
        try:
            return [None if v is None else epoch + timedelta(microseconds=v) for v in micros]
        except OverflowError:  # beyond datetime's range: let Arrow raise its own error
            pass
    if pa.types.is_decimal(kind):  # Decimal from text: a third of Arrow's per-value cost
        return [None if v is None else Decimal(v) for v in column.cast(pa.string()).to_pylist()]
    values: list[Any] = column.to_pylist()
    return values


def rows_to_arrow(columns: Sequence[str], rows: Sequence[Row]) -> pa.Table:
    """Python rows as an Arrow table, each column's type inferred from its values.

    So the types vary from one result to the next (decimal(5,2) for 130.00, decimal(4,2) for
    12.34): a caller that combines results casts them with ``with_declared_types`` first.
    """
    arrays = [pa.array([row[index] for row in rows]) for index in range(len(columns))]
    return pa.Table.from_arrays(arrays, names=list(columns))


_ARROW_TYPES = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    # Spark's TIMESTAMP is an instant (Iceberg timestamptz): what DuckDB reads it as.
    "timestamp": pa.timestamp("us", tz="UTC"),
}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


def arrow_type(spark_type: str) -> pa.DataType:
    """The Arrow type of a primitive Spark SQL type name of a table spec."""
    name = spark_type.strip().lower()
    if name in _ARROW_TYPES:
        return _ARROW_TYPES[name]
    if match := _DECIMAL.match(name):
        return pa.decimal128(int(match[1]), int(match[2]))
    raise ConfigurationError(f"no Arrow type for Spark type {spark_type!r}")


def with_declared_types(table: pa.Table, spec: TableSpec) -> pa.Table:
    """``table``, a result of columns of ``spec``'s table selected by name, with the types the
    spec declares for them: the same schema whichever engine answered, and for every result."""
    declared = {column.name: column.type for column in spec.columns}
    schema = pa.schema([pa.field(name, arrow_type(declared[name])) for name in table.column_names])
    return table if table.schema == schema else table.cast(schema)


def _quoted_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBEngine:
    """DuckDB over the Iceberg tables of the catalog: one view per table, rebound on new commits.

    Each view reads ``iceberg_scan(metadata)``, which reads the table's metadata, manifest list
    and manifests on every query before it prunes files. A point query (one symbol, one day of
    a year of daily partitions) spends most of its time there, so single-table ``SELECT``s whose
    ``WHERE`` compares columns with bound parameters (``symbol = ? AND window_start >= ? AND
    window_start < ?``) skip it: the snapshot's data files and their column bounds are planned
    once per snapshot with PyIceberg, the files whose bounds cannot match are dropped, and the
    table name is replaced by ``read_parquet`` of the remaining files, whose footers DuckDB keeps
    in memory and whose row groups it prunes by statistics. Measured in bench/bench_query_api.py
    (a month of daily partitions, files sorted by symbol): about half the time of iceberg_scan.
    Tables with delete files or an evolved schema, and every other query shape, use the view, so
    results never differ from iceberg_scan (tests/unit/finlake/test_query.py checks both ways).
    """

    name = "duckdb"

    def __init__(self, settings: FinlakeSettings, *, metadata_ttl_s: float = 0.0) -> None:
        settings.catalog_db.parent.mkdir(parents=True, exist_ok=True)
        self._settings = settings
        lake_connection(settings)  # a configuration error stops the caller now, not each query
        self._catalog: Catalog | None = None
        self._catalog_lock = threading.Lock()
        self.connection = duckdb_connection()
        # How long a bound view may serve before the catalog is asked again; snapshot_id() always
        # asks, and rebinds, so a caller that watches snapshots never reads an older one.
        self.metadata_ttl_s = metadata_ttl_s
        self._bound: dict[tuple[str, str], tuple[str, float]] = {}
        # Per table: (metadata location, its data files or None), planned on first use.
        self._plans: dict[tuple[str, str], tuple[str, tuple[DataFileStats, ...] | None]] = {}
        self._tables: dict[tuple[str, str], Table] = {}
        self._shapes: dict[str, ScanShape | None] = {}
        self._lock = threading.Lock()
        self._clock: Callable[[], float] = time.monotonic
        self.pruned_queries = 0  # queries that read a planned subset of files (for tests)

    @property
    def catalog(self) -> Catalog:
        """The lake's catalog, opened on first use and until it opens: a catalog database that
        is down when a service starts fails the queries that need it, not the service."""
        with self._catalog_lock:
            if self._catalog is None:
                self._catalog = lake_catalog(self._settings)
            return self._catalog

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
        self._tables[key] = loaded
        if key in self._plans and self._plans[key][0] != location:
            self._plan(key)  # a table that pruned before: plan its new snapshot now
        return loaded.metadata.current_snapshot_id

    def _plan(self, key: tuple[str, str]) -> tuple[DataFileStats, ...] | None:
        """The data files of the bound snapshot of ``key`` (planned once per snapshot)."""
        loaded = self._tables[key]
        planned = self._plans.get(key)
        if planned is None or planned[0] != loaded.metadata_location:
            planned = (loaded.metadata_location, plan_files(loaded))
            self._plans[key] = planned
        return planned[1]

    def _shape(self, sql: str) -> ScanShape | None:
        if sql not in self._shapes:
            if len(self._shapes) >= 512:
                self._shapes.clear()
            parsed = self.connection.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
            self._shapes[sql] = scan_shape(json.loads(parsed[0])) if parsed else None
        return self._shapes[sql]

    def _pruned(self, sql: str, params: Sequence[object]) -> str:
        """``sql`` reading only the files that can match its ``WHERE``, when that is safe."""
        if "?" not in sql:
            return sql
        shape = self._shape(sql)
        if shape is None or shape.table not in self._tables:
            return sql
        match = _TABLE_REF.match(sql, shape.location)
        mentions = [ref for ref in _TABLE_REF.findall(sql) if ref[1].lower() == shape.table[1]]
        if match is None or (match[1].lower(), match[2].lower()) != shape.table:
            return sql
        if len(mentions) != 1:  # a subquery or a literal names the table again
            return sql
        files = self._plan(shape.table)
        if files is None or len(params) <= max(param for _, _, param in shape.constraints):
            return sql
        kept = [
            data.path
            for data in files
            if all(data.may_match(col, op, params[i]) for col, op, i in shape.constraints)
        ]
        if len(kept) == len(files):
            return sql
        # Nothing can match: read one file's schema and no rows, so the result types still hold.
        paths = ", ".join(_quoted_literal(path) for path in kept or [files[0].path])
        relation = f"read_parquet([{paths}], hive_partitioning = false)"
        if not kept:
            relation = f"(SELECT * FROM {relation} LIMIT 0)"
        relation += "" if shape.alias else f' AS "{shape.table[1]}"'
        self.pruned_queries += 1
        return sql[: match.start()] + relation + sql[match.end() :]

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
        # Through Arrow: its UTC datetimes are several times cheaper than DuckDB's pytz ones.
        table = self._arrow(sql, params)
        if table is None:
            return [], []
        columns = [python_values(column) for column in table.columns]
        return table.column_names, list(zip(*columns, strict=True))

    def query_arrow(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        """The result of ``sql`` as an Arrow table (no Python value per cell)."""
        table = self._arrow(sql, params)
        return pa.table({}) if table is None else table

    def _arrow(self, sql: str, params: Sequence[object]) -> pa.Table | None:
        with self._lock, reading_the_lake():
            self._bind(sql)
            sql = self._pruned(sql, params)
        cursor = self.connection.cursor()  # one cursor per call: callers run on many threads
        try:
            result = cursor.execute(sql, list(params))
            return None if result.description is None else result.to_arrow_table()
        except duckdb.Error as error:
            raise QueryError(str(error).splitlines()[0]) from error
        finally:
            cursor.close()

    def snapshot_id(self, table: str) -> int | None:
        """Current snapshot id of ``namespace.table``, read from the catalog (view rebound)."""
        namespace, _, name = table.partition(".")
        with self._lock, reading_the_lake():
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
