"""Creating the flow's tables through PyIceberg, from the same TableSpecs Spark's DDL comes from.

The upload writes bronze without Spark, so the first upload may have to create the table. It gets
the schema, partitioning and properties Spark's ``CREATE TABLE`` would give it, so whichever side
comes first, the other finds the same table.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import TableAlreadyExistsError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform, Transform
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    MapType,
    NestedField,
    StringType,
    TimestamptzType,
)

from finlake.errors import ConfigurationError
from finlake.lake.table_spec import TableSpec

_PRIMITIVES: dict[str, IcebergType] = {
    "string": StringType(),
    "bigint": LongType(),
    "int": IntegerType(),
    "boolean": BooleanType(),
    "double": DoubleType(),
    "date": DateType(),
    # Spark's TIMESTAMP is an instant (Iceberg timestamptz), as Spark's DDL creates it.
    "timestamp": TimestamptzType(),
}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_MAP = re.compile(r"^map<\s*([^,<>]+)\s*,\s*(.+)>$")
_PARTITION = re.compile(r"^(?:(days)\((\w+)\)|(\w+))$")


def iceberg_type(spark_type: str, ids: Iterator[int]) -> IcebergType:
    """The Iceberg type of a Spark SQL type name (the subset the table specs use)."""
    name = spark_type.strip().lower()
    if name in _PRIMITIVES:
        return _PRIMITIVES[name]
    if match := _DECIMAL.match(name):
        return DecimalType(int(match[1]), int(match[2]))
    if match := _MAP.match(name):
        key_id, value_id = next(ids), next(ids)
        return MapType(
            key_id, iceberg_type(match[1], ids), value_id, iceberg_type(match[2], ids), False
        )
    raise ConfigurationError(f"no Iceberg type for Spark type {spark_type!r}")


def iceberg_schema(spec: TableSpec) -> Schema:
    """The table's schema: every column optional, documented with its comment."""
    ids = itertools.count(len(spec.columns) + 1)
    fields = [
        NestedField(
            index,
            column.name,
            iceberg_type(column.type, ids),
            required=False,
            doc=column.comment,
        )
        for index, column in enumerate(spec.columns, start=1)
    ]
    return Schema(*fields)


def partition_spec(spec: TableSpec, schema: Schema) -> PartitionSpec:
    """``days(column)`` or an identity column, as Spark's ``PARTITIONED BY`` names it."""
    if spec.partition_by is None:
        return PartitionSpec()
    match = _PARTITION.match(spec.partition_by.strip())
    if match is None:
        raise ConfigurationError(f"unsupported partitioning {spec.partition_by!r}")
    column = match[2] or match[3]
    transform: Transform[Any, Any] = DayTransform() if match[1] else IdentityTransform()
    name = f"{column}_day" if match[1] else column
    source = schema.find_field(column).field_id
    return PartitionSpec(PartitionField(source, 1000, transform, name))


def ensure_table(catalog: Catalog, spec: TableSpec, warehouse: str) -> Table:
    """Load the table, creating its namespace and itself first if they do not exist."""
    namespace = spec.identifier.split(".")[0]
    catalog.create_namespace_if_not_exists(namespace)
    if catalog.table_exists(spec.identifier):
        return catalog.load_table(spec.identifier)
    schema = iceberg_schema(spec)
    try:
        return catalog.create_table(
            spec.identifier,
            schema,
            location=spec.location_in(warehouse),
            partition_spec=partition_spec(spec, schema),
            properties={**spec.properties, "comment": spec.comment},
        )
    except TableAlreadyExistsError:  # another writer created it meanwhile
        return catalog.load_table(spec.identifier)
