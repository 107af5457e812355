"""``finlake query``: SQL over the lake tables with DuckDB, no Spark needed."""

from __future__ import annotations

import csv
import json
import re
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table
from rich.text import Text

from finlake.cli.output import console
from finlake.config import get_settings
from finlake.query import LakeQuery

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet runs as a formula when a cell begins with it (OWASP: CSV injection)."""
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class OutputFormat(StrEnum):
    """How to print the result."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it, nested values (maps, lists, structs) included."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID | timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _text(value: Any) -> str:
    """One CSV or table cell: nested values as JSON, None as empty."""
    plain = _plain(value)
    if plain is None:
        return ""
    return json.dumps(plain) if isinstance(plain, dict | list) else str(plain)


def _csv_cell(value: Any) -> str:
    """One CSV cell; text a spreadsheet would run as a formula starts with a quote (OWASP)."""
    text = _text(value)
    # Numbers stay as they are, negative ones too, also as text ("-12.50" in bronze's amount
    # column): a spreadsheet reads them as that number, never as a formula.
    if isinstance(value, str) and text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return f"'{text}"
    return text


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
    table = LakeQuery(get_settings()).engine.query_arrow(sql)
    columns = table.column_names
    # Maps as dicts (Arrow's default is a list of pairs), every other value as Arrow gives it.
    values = [column.to_pylist(maps_as_pydicts="lossy") for column in table.columns]
    rows = list(zip(*values, strict=True))
    if output is OutputFormat.JSON:
        records = [dict(zip(columns, map(_plain, row), strict=True)) for row in rows]
        sys.stdout.write(json.dumps(records, indent=1) + "\n")
    elif output is OutputFormat.CSV:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([list(map(_csv_cell, row)) for row in rows])
    else:
        table = Table(*columns, caption=f"{len(rows)} rows")
        for row in rows:
            # Text, not str: a value such as "[bold]" is data, not rich markup.
            table.add_row(*(Text(_text(value)) for value in row))
        console.print(table)
