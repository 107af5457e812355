"""Per-snapshot file pruning for the embedded engine: which Parquet data files of an Iceberg
snapshot can hold rows of a single-table ``SELECT`` whose ``WHERE`` compares columns with bound
parameters, from the manifests' column bounds and DuckDB's parse of the SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyiceberg.conversions import from_bytes
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
