"""SQL over the lake without Spark: one engine interface, DuckDB over the Iceberg tables by default.

Every engine speaks the same dialect subset (ANSI ``SELECT`` with ``min_by``/``max_by``, window
functions, ``LIMIT ?``), names lake tables as ``namespace.table`` and binds parameters as ``?``
(qmark) placeholders: values are never formatted into SQL, so a Trino engine drops in unchanged.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.conversions import from_bytes
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.manifest import FileFormat
from pyiceberg.table import Table
from pyiceberg.types import (
    DateType,
    IntegerType,
    LongType,
    PrimitiveType,
    StringType,
    TimestampType,
    TimestamptzType,
)

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
    """Python rows as an Arrow table, each column's type inferred from its values."""
    arrays = [pa.array([row[index] for row in rows]) for index in range(len(columns))]
    return pa.Table.from_arrays(arrays, names=list(columns))


def _quoted_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- per-snapshot file pruning ----------------------------------------------------------------

Bound = datetime | date | str | int
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Comparison of ``column OP value``; the flipped operator when the value is on the left.
_COMPARISONS = {
    "COMPARE_EQUAL": ("=", "="),
    "COMPARE_GREATERTHAN": (">", "<"),
    "COMPARE_GREATERTHANOREQUALTO": (">=", "<="),
    "COMPARE_LESSTHAN": ("<", ">"),
    "COMPARE_LESSTHANOREQUALTO": ("<=", ">="),
}


def _bound_value(field_type: PrimitiveType, raw: bytes) -> Bound | None:
    """A column bound from a manifest, as a value comparable with bound query parameters."""
    value = from_bytes(field_type, raw)
    if isinstance(field_type, StringType):
        return str(value)
    if isinstance(field_type, IntegerType | LongType):
        return int(value)
    if isinstance(field_type, TimestampType | TimestamptzType):
        # Naive timestamps compare in the connection's time zone, which is UTC.
        return _EPOCH + timedelta(microseconds=int(value))
    if isinstance(field_type, DateType):
        return date(1970, 1, 1) + timedelta(days=int(value))
    return None


def _param_value(bound: Bound, param: object) -> Bound | None:
    """``param`` in the type of ``bound``, or None when the two do not compare safely."""
    if isinstance(bound, datetime):
        if not isinstance(param, datetime):
            return None
        return param if param.tzinfo is not None else param.replace(tzinfo=UTC)
    if isinstance(bound, date):
        return param if isinstance(param, date) and not isinstance(param, datetime) else None
    if isinstance(bound, str):
        return param if isinstance(param, str) else None
    return param if isinstance(param, int) and not isinstance(param, bool) else None


@dataclass(frozen=True)
class DataFileStats:
    """One Parquet data file of a snapshot and the lower/upper bounds of its columns."""

    path: str
    lower: dict[str, Bound]
    upper: dict[str, Bound]

    def may_match(self, column: str, op: str, param: object) -> bool:
        """False only when no row of the file can satisfy ``column OP param``."""
        lower, upper = self.lower.get(column), self.upper.get(column)
        if lower is None or upper is None:
            return True
        low, high = _param_value(lower, param), _param_value(upper, param)
        if low is None or high is None:
            return True
        try:
            match op:
                case "=":
                    return bool(low >= lower and high <= upper)  # type: ignore[operator]
                case ">":
                    return bool(upper > high)  # type: ignore[operator]
                case ">=":
                    return bool(upper >= high)  # type: ignore[operator]
                case "<":
                    return bool(lower < low)  # type: ignore[operator]
                case _:  # "<="
                    return bool(lower <= low)  # type: ignore[operator]
        except TypeError:  # e.g. an aware bound against a value that is not comparable
            return True


def plan_files(table: Table) -> tuple[DataFileStats, ...] | None:
    """The data files of ``table``'s current snapshot with column bounds, or None when plain
    Parquet reads would not return what Iceberg does (delete files, an evolved schema, another
    file format) or when there is nothing to read."""
    if table.metadata.current_snapshot_id is None or len(table.metadata.schemas) != 1:
        return None
    schema = table.schema()
    types: dict[int, tuple[str, PrimitiveType]] = {
        field.field_id: (field.name.lower(), field.field_type)
        for field in schema.fields
        if isinstance(field.field_type, PrimitiveType)
    }
    files = []
    for task in table.scan().plan_files():
        data = task.file
        if task.delete_files or data.file_format != FileFormat.PARQUET:
            return None
        bounds: list[dict[str, Bound]] = [{}, {}]
        for side, raw_bounds in zip(bounds, (data.lower_bounds, data.upper_bounds), strict=True):
            for field_id, raw in (raw_bounds or {}).items():
                if field_id in types:
                    name, field_type = types[field_id]
                    value = _bound_value(field_type, raw)
                    if value is not None:
                        side[name] = value
        files.append(DataFileStats(data.file_path, bounds[0], bounds[1]))
    return tuple(files) if files else None


@dataclass(frozen=True)
class ScanShape:
    """A single-table ``SELECT``: where its table name sits in the SQL, and the top-level
    ``column OP ?`` conjuncts of its ``WHERE`` (``param`` is the 0-based parameter index)."""

    table: tuple[str, str]
    location: int
    alias: str
    constraints: tuple[tuple[str, str, int], ...]


def _column(node: dict[str, Any], names: set[str]) -> str | None:
    if node.get("class") != "COLUMN_REF":
        return None
    *qualifier, column = [str(part).lower() for part in node["column_names"]]
    if qualifier and qualifier[-1] not in names:
        return None
    return column


def _parameter(node: dict[str, Any], positions: dict[str, int]) -> int | None:
    if node.get("class") != "PARAMETER" or str(node.get("identifier")) not in positions:
        return None
    return positions[str(node["identifier"])] - 1


def _conjuncts(node: dict[str, Any] | None) -> list[dict[str, Any]]:
    if node is None:
        return []
    if node.get("type") == "CONJUNCTION_AND":
        return [part for child in node["children"] for part in _conjuncts(child)]
    return [node]


def scan_shape(parsed: dict[str, Any]) -> ScanShape | None:
    """The ScanShape of DuckDB's ``json_serialize_sql`` output, or None for any other query."""
    statements = parsed.get("statements", [])
    if parsed.get("error") or len(statements) != 1:
        return None
    node = statements[0]["node"]
    source = node.get("from_table") or {}
    if node.get("type") != "SELECT_NODE" or source.get("type") != "BASE_TABLE":
        return None
    if node.get("cte_map", {}).get("map") or not source.get("schema_name"):
        return None
    table = (str(source["schema_name"]).lower(), str(source["table_name"]).lower())
    alias = str(source.get("alias") or "")
    names = {table[1], alias.lower()} - {""}
    params = statements[0].get("named_param_map", [])
    positions = {str(param["key"]): int(param["value"]) for param in params}
    constraints = []
    for conjunct in _conjuncts(node.get("where_clause")):
        if conjunct.get("type") not in _COMPARISONS:
            continue
        forward, flipped = _COMPARISONS[conjunct["type"]]
        for column_node, value_node, op in (
            (conjunct["left"], conjunct["right"], forward),
            (conjunct["right"], conjunct["left"], flipped),
        ):
            column, param = _column(column_node, names), _parameter(value_node, positions)
            if column is not None and param is not None:
                constraints.append((column, op, param))
    if not constraints:
        return None
    return ScanShape(table, int(source["query_location"]), alias, tuple(constraints))


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
        self.catalog = lake_catalog(settings)
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
        with self._lock:
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
