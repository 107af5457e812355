"""``finlake query``: SQL over the lake tables with DuckDB, no Spark needed."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from finlake.cli.output import console
from finlake.config import get_settings
from finlake.query import LakeQuery


class OutputFormat(StrEnum):
    """How to print the result."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def query(
    sql: Annotated[
        str,
        typer.Argument(
            help='SQL naming tables as namespace.table, e.g. "SELECT * FROM market.ohlc_1h".'
        ),
    ],
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table, csv or json.")
    ] = OutputFormat.TABLE,
) -> None:
    """Run SQL over the lake (DuckDB over the Iceberg tables)."""
    columns, rows = LakeQuery(get_settings()).run(sql)
    if output is OutputFormat.JSON:
        records = [dict(zip(columns, map(_plain, row), strict=True)) for row in rows]
        sys.stdout.write(json.dumps(records, indent=1) + "\n")
    elif output is OutputFormat.CSV:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([list(map(_plain, row)) for row in rows])
    else:
        table = Table(*columns, caption=f"{len(rows)} rows")
        for row in rows:
            table.add_row(*(("" if v is None else str(_plain(v))) for v in row))
        console.print(table)
