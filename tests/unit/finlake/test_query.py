from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from finlake.config import FinlakeSettings
from finlake.query import LakeQuery, QueryError, lake_catalog

BARS = pa.table(
    {
        "symbol": ["AAPL", "MSFT"],
        "window_start": pa.array(
            [datetime(2026, 11, 26, 14, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")
        ),
        "close": pa.array([Decimal("231.47"), Decimal("410.10")], pa.decimal128(10, 2)),
    }
)


@pytest.fixture
def lake_home(tmp_path: Path) -> Path:
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    settings.warehouse.mkdir(parents=True)
    catalog = lake_catalog(settings)
    catalog.create_namespace("market")
    table = catalog.create_table(
        "market.ohlc_1h", schema=BARS.schema, location=f"{settings.warehouse.as_uri()}/market/x"
    )
    table.append(BARS)
    return tmp_path


def test_query_reads_iceberg_tables_by_namespace_and_name(lake_home: Path) -> None:
    lake = LakeQuery(FinlakeSettings.model_validate({"home": lake_home}))
    columns, rows = lake.run("SELECT symbol, close FROM market.ohlc_1h ORDER BY symbol")
    assert columns == ["symbol", "close"]
    assert rows == [("AAPL", Decimal("231.47")), ("MSFT", Decimal("410.10"))]


def test_unknown_table_is_a_clear_error(lake_home: Path) -> None:
    lake = LakeQuery(FinlakeSettings.model_validate({"home": lake_home}))
    with pytest.raises(QueryError, match=r"no table market\.nope in the lake"):
        lake.run("SELECT * FROM market.nope")


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", "query", *args],
        env={**os.environ, "FINLAKE_HOME": str(home), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_cli_prints_json_and_csv(lake_home: Path) -> None:
    sql = "SELECT symbol, window_start, close FROM market.ohlc_1h ORDER BY symbol"
    as_json = _cli(lake_home, sql, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)[0] == {
        "symbol": "AAPL",
        "window_start": "2026-11-26T14:00:00+00:00",
        "close": "231.47",
    }
    as_csv = _cli(lake_home, sql, "--format", "csv")
    assert as_csv.stdout.splitlines()[2] == "MSFT,2026-11-26T14:00:00+00:00,410.10"


def test_cli_bad_sql_is_one_line(lake_home: Path) -> None:
    done = _cli(lake_home, "SELEC nonsense")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: Parser Error")
