from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.transforms import DayTransform

from finlake.config import FinlakeSettings
from finlake.query import DuckDBEngine, LakeQuery, QueryError, lake_catalog

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


def test_cli_prints_nested_values_and_brackets_as_they_are(lake_home: Path) -> None:
    # Maps and lists (as in the pipelines' run records) hold timestamps and decimals too.
    sql = (
        "SELECT symbol, map([symbol], [window_start]) AS seen, [close, close * 2] AS closes, "
        "'[bold]x' AS note FROM market.ohlc_1h WHERE symbol = 'AAPL'"
    )
    as_json = _cli(lake_home, sql, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [
        {
            "symbol": "AAPL",
            "seen": {"AAPL": "2026-11-26T14:00:00+00:00"},
            "closes": ["231.47", "462.94"],
            "note": "[bold]x",
        }
    ]
    as_csv = _cli(lake_home, sql, "--format", "csv")
    assert as_csv.stdout.splitlines()[1] == (
        'AAPL,"{""AAPL"": ""2026-11-26T14:00:00+00:00""}","[""231.47"", ""462.94""]",[bold]x'
    )
    as_table = _cli(lake_home, sql)
    assert as_table.returncode == 0, as_table.stderr
    assert "[bold]x" in as_table.stdout


def test_cli_csv_escapes_text_a_spreadsheet_would_run_but_not_numbers(lake_home: Path) -> None:
    sql = (
        "SELECT '=HYPERLINK(1)' AS a, '@SUM(1)' AS b, '+1+1' AS c, '-1+1' AS d, "
        "chr(9) || '=1' AS e, '-12.50' AS amount_text, -close AS negative, 'a=1' AS f "
        "FROM market.ohlc_1h WHERE symbol = 'AAPL'"
    )
    as_csv = _cli(lake_home, sql, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines()[1] == (
        "'=HYPERLINK(1),'@SUM(1),'+1+1,'-1+1,'\t=1,-12.50,-231.47,a=1"
    )


def test_cli_bad_sql_is_one_line(lake_home: Path) -> None:
    done = _cli(lake_home, "SELEC nonsense")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: Parser Error")


# -- per-snapshot file pruning ----------------------------------------------------------------

DAY0 = datetime(2026, 11, 24, tzinfo=UTC)


def _minute_bars(symbols: list[str], days: int, start: datetime = DAY0) -> pa.Table:
    rows = [(s, start + timedelta(minutes=m)) for s in symbols for m in range(0, days * 1440, 30)]
    return pa.table(
        {
            "symbol": pa.array([s for s, _ in rows], pa.string()),
            "window_start": pa.array([t for _, t in rows], pa.timestamp("us", tz="UTC")),
            "close": pa.array(
                [Decimal(i % 997) / 4 for i in range(len(rows))], pa.decimal128(10, 2)
            ),
        }
    )


@pytest.fixture
def daily_home(tmp_path: Path) -> Path:
    """market.ohlc_1m as the pipeline lays it out: daily partitions, sorted by symbol and time."""
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    settings.warehouse.mkdir(parents=True)
    catalog = lake_catalog(settings)
    catalog.create_namespace("market")
    bars = _minute_bars(["AAPL", "MSFT", "NVDA"], 3)
    table = catalog.create_table(
        "market.ohlc_1m", schema=bars.schema, location=f"{settings.warehouse.as_uri()}/market/m"
    )
    with table.update_spec() as update:
        update.add_field("window_start", DayTransform(), "window_start_day")
    table.append(bars.sort_by([("symbol", "ascending"), ("window_start", "ascending")]))
    return tmp_path


def _reference(engine: DuckDBEngine, sql: str, params: list[object]) -> list[tuple[object, ...]]:
    """What the iceberg_scan view answers (the engine's own query() may read pruned files)."""
    engine.snapshot_id("market.ohlc_1m")
    return engine.connection.cursor().execute(sql, params).fetchall()


PRUNED_CASES = [
    (
        "SELECT symbol, window_start, close FROM market.ohlc_1m WHERE symbol = ? "
        "AND window_start >= ? AND window_start < ? ORDER BY window_start LIMIT ?",
        ["MSFT", DAY0 + timedelta(hours=16), DAY0 + timedelta(hours=40), 5000],
    ),
    (  # an alias, qualified columns, the value on the left, an inclusive bound
        "SELECT t.symbol, count(*), max(t.close) FROM market.ohlc_1m AS t "
        "WHERE ? <= t.window_start AND t.window_start <= ? GROUP BY t.symbol ORDER BY 1",
        [DAY0 + timedelta(days=1), DAY0 + timedelta(days=1, hours=23)],
    ),
    (  # the table name as qualifier, no alias
        "SELECT ohlc_1m.close FROM market.ohlc_1m WHERE ohlc_1m.window_start > ? "
        "ORDER BY ohlc_1m.window_start, ohlc_1m.symbol",
        [DAY0 + timedelta(days=2, hours=22)],
    ),
    (  # nothing can match: no file is read, the result keeps its columns
        "SELECT symbol, count(*) AS n FROM market.ohlc_1m WHERE window_start >= ? GROUP BY symbol",
        [DAY0 + timedelta(days=9)],
    ),
    (  # naive timestamps compare as UTC, like the connection does
        "SELECT * FROM market.ohlc_1m WHERE window_start = ?",
        [datetime(2026, 11, 25, 12, 30)],
    ),
]


@pytest.mark.parametrize(("sql", "params"), PRUNED_CASES)
def test_pruned_reads_answer_what_iceberg_scan_answers(
    daily_home: Path, sql: str, params: list[object]
) -> None:
    engine = DuckDBEngine(FinlakeSettings.model_validate({"home": daily_home}))
    columns, rows = engine.query(sql, params)
    assert engine.pruned_queries == 1
    reference = _reference(engine, sql, params)
    assert rows == reference
    assert columns == [c[0] for c in engine.connection.execute(sql, params).description or []]


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT count(*) FROM market.ohlc_1m", []),  # no WHERE
        (  # an OR: no conjunct bounds every row
            "SELECT count(*) FROM market.ohlc_1m WHERE window_start < ? OR symbol = ?",
            [DAY0 + timedelta(hours=1), "MSFT"],
        ),
        (  # the table twice: not a single-table scan
            "SELECT count(*) FROM market.ohlc_1m WHERE window_start >= "
            "(SELECT max(window_start) FROM market.ohlc_1m WHERE symbol = ?)",
            ["AAPL"],
        ),
        (  # a parameter of another type than the column: compared by DuckDB, never pruned on
            "SELECT count(*) FROM market.ohlc_1m WHERE window_start >= ?",
            ["2026-11-26 00:00:00+00"],
        ),
    ],
)
def test_other_queries_read_through_iceberg_scan(
    daily_home: Path, sql: str, params: list[object]
) -> None:
    engine = DuckDBEngine(FinlakeSettings.model_validate({"home": daily_home}))
    _, rows = engine.query(sql, params)
    assert engine.pruned_queries == 0
    assert rows == _reference(engine, sql, params)


def test_a_new_snapshot_is_planned_and_read(daily_home: Path) -> None:
    settings = FinlakeSettings.model_validate({"home": daily_home})
    engine = DuckDBEngine(settings)
    sql = "SELECT count(*) FROM market.ohlc_1m WHERE symbol = ? AND window_start >= ?"
    params: list[object] = ["AAPL", DAY0 + timedelta(days=2)]
    assert engine.query(sql, params)[1] == [(48,)]
    table = lake_catalog(settings).load_table("market.ohlc_1m")
    table.append(_minute_bars(["AAPL"], 1, DAY0 + timedelta(days=3)))
    engine.snapshot_id("market.ohlc_1m")  # what the API's refresh does on a new commit
    assert engine.query(sql, params)[1] == [(96,)]
    assert engine.pruned_queries == 2


def test_an_evolved_schema_reads_through_iceberg_scan(daily_home: Path) -> None:
    settings = FinlakeSettings.model_validate({"home": daily_home})
    table = lake_catalog(settings).load_table("market.ohlc_1m")
    with table.update_schema() as update:
        update.rename_column("close", "last")
    engine = DuckDBEngine(settings)
    sql = "SELECT max(last) FROM market.ohlc_1m WHERE symbol = ? AND window_start >= ?"
    params: list[object] = ["NVDA", DAY0 + timedelta(days=2)]
    assert engine.query(sql, params)[1] == _reference(engine, sql, params)
    assert engine.pruned_queries == 0


def test_utc_timestamps_convert_exactly_as_arrow_does(lake_home: Path) -> None:
    engine = DuckDBEngine(FinlakeSettings.model_validate({"home": lake_home}))
    sql = (
        "SELECT window_start, CAST(NULL AS TIMESTAMPTZ) AS missing, "
        "TIMESTAMPTZ '1969-12-31 23:59:59.999999+00' AS before_epoch FROM market.ohlc_1h"
    )
    _, rows = engine.query(sql)
    arrow = engine.connection.cursor().execute(sql).to_arrow_table().to_pylist()
    assert rows == [tuple(row.values()) for row in arrow]
    assert [(v.tzinfo, v.isoformat()) for v in rows[0] if v] == [
        (v.tzinfo, v.isoformat()) for v in arrow[0].values() if v
    ]
    assert rows[0][2].isoformat() == "1969-12-31T23:59:59.999999+00:00"


def test_decimals_convert_exactly_as_arrow_does(lake_home: Path) -> None:
    engine = DuckDBEngine(FinlakeSettings.model_validate({"home": lake_home}))
    sql = (
        "SELECT close, CAST(0 AS DECIMAL(10, 2)), CAST(-0.5 AS DECIMAL(18, 6)), "
        "CAST(NULL AS DECIMAL(10, 2)), CAST(12345678901234567890.12 AS DECIMAL(38, 2)) "
        "FROM market.ohlc_1h ORDER BY symbol"
    )
    _, rows = engine.query(sql)
    arrow = engine.connection.cursor().execute(sql).to_arrow_table().to_pylist()
    assert [repr(value) for row in rows for value in row] == [
        repr(value) for row in arrow for value in row.values()
    ]


def test_a_second_demo_starts_after_the_ticks_silver_holds(tmp_path: Path) -> None:
    from finlake.cli.demo import TICK_INTERVAL, after_earlier_runs

    settings = FinlakeSettings.model_validate({"home": tmp_path})
    settings.warehouse.mkdir(parents=True)
    start = datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert after_earlier_runs(settings, start) == start  # no market.cleaned yet
    catalog = lake_catalog(settings)
    catalog.create_namespace("market")
    newest = datetime(2026, 11, 26, 12, 59, 50, tzinfo=UTC)
    ticks = pa.table({"timestamp": pa.array([start, newest], pa.timestamp("us", tz="UTC"))})
    table = catalog.create_table(
        "market.cleaned", schema=ticks.schema, location=f"{settings.warehouse.as_uri()}/market/c"
    )
    table.append(ticks)
    assert after_earlier_runs(settings, start) == newest + TICK_INTERVAL
    assert after_earlier_runs(settings, newest + timedelta(hours=1)) == newest + timedelta(hours=1)
