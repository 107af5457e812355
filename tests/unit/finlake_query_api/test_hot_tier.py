"""The hot tier's refreshes over an engine that types its results from their values (Trino's)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from finlake.query import DuckDBEngine, QueryError, rows_to_arrow
from finlake_query_api.bars import Interval
from finlake_query_api.config import Settings
from finlake_query_api.main import create_app
from tests.unit.finlake_query_api.conftest import API_KEY, CountingEngine, api_settings
from tests.unit.finlake_query_api.lake_data import MONEY, NOW, TS, build_lake, minute_bars, write

LATER = NOW + timedelta(hours=2)


class RowsEngine(CountingEngine):
    """A real engine whose Arrow results are built from Python rows, as TrinoEngine's are: each
    column typed from the values of that one result (decimal(5,2) for 130.00, (4,2) for 12.34)."""

    def query_arrow(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        return rows_to_arrow(*self.query(sql, params))


class FailingEngine(CountingEngine):
    """A real engine that fails the hot tier's next read while ``is_failing``."""

    is_failing = False

    def query_arrow(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        if self.is_failing and "FROM market.ohlc_1m" in sql:
            raise QueryError("the engine failed the refresh")
        return super().query_arrow(sql, params)


def micro_batch(settings: Settings, first: datetime, close: str) -> None:
    """What the stream's next micro-batch merges: 30 new AAPL minutes from ``first``, closing at
    ``close``, stamped when the batch ran (30 minutes after ``first``)."""
    bars = minute_bars(["AAPL"], first, 60).slice(0, 30)
    for name in ("open", "high", "low", "close"):
        prices = pa.array([Decimal(close)] * bars.num_rows, MONEY)
        bars = bars.set_column(bars.schema.get_field_index(name), name, prices)
    stamps = pa.array([first + timedelta(minutes=30)] * bars.num_rows, TS)
    bars = bars.set_column(bars.schema.get_field_index("updated_at"), "updated_at", stamps)
    write(settings, {"market.ohlc_1m": bars})


def hot_closes(client: TestClient) -> list[str]:
    params = {"start": NOW.isoformat(), "end": (NOW + timedelta(hours=1)).isoformat()}
    page = client.get("/v1/symbols/AAPL/ohlc", params=params).json()
    assert page["source"] == "hot"
    return [bar["close"] for bar in page["bars"]]


def test_refreshes_typed_from_their_values_join_the_bars_held(tmp_path: Path) -> None:
    """The full load holds NVDA at 130.00 (decimal(5,2) inferred for every bar it read); a
    refresh of AAPL's bars at 12.34 alone infers decimal(4,2). The hot tier keeps taking new
    snapshots, and the API stays ready."""
    settings = api_settings(tmp_path, response_cache_entries=0)
    build_lake(settings, symbols=("AAPL", "MSFT", "NVDA"))
    app = create_app(settings, engine=RowsEngine(DuckDBEngine(settings)), clock=lambda: LATER)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as client:
        market = app.state.finlake.market
        # build_lake stamps every bar NOW: the first refresh reads them all again (within
        # REWRITE_MARGIN of the newest stamp), the second only AAPL's new bars.
        micro_batch(settings, NOW, "12.34")
        market.refresh()
        micro_batch(settings, NOW + timedelta(minutes=30), "12.35")
        market.refresh()
        assert hot_closes(client) == ["12.34"] * 30 + ["12.35"] * 30
        assert client.get("/readyz").status_code == 200


def test_the_bars_held_have_the_declared_types_whichever_engine_read_them(tmp_path: Path) -> None:
    settings = api_settings(tmp_path)
    build_lake(settings, symbols=("AAPL", "NVDA"))
    schemas = []
    for engine in (DuckDBEngine(settings), RowsEngine(DuckDBEngine(settings))):
        app = create_app(settings, engine=engine, clock=lambda: NOW)
        with TestClient(app, headers={"X-API-Key": API_KEY}):
            rows = app.state.finlake.market.hot.series(Interval.MINUTE, "AAPL").rows
            schemas.append(rows.schema)
    assert schemas[0] == schemas[1]
    assert schemas[0].field("open").type == pa.decimal128(10, 2)
    assert schemas[0].field("vwap").type == pa.decimal128(18, 6)


def test_a_failed_refresh_is_followed_by_a_full_load(tmp_path: Path) -> None:
    """Whatever failed (the engine, or merging its answer into the bars held), the next poll
    reads the window whole instead of trying the same refresh on every poll."""
    settings = api_settings(tmp_path, response_cache_entries=0)
    build_lake(settings, symbols=("AAPL",))
    engine = FailingEngine(DuckDBEngine(settings))
    app = create_app(settings, engine=engine, clock=lambda: LATER)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as client:
        market = app.state.finlake.market
        micro_batch(settings, NOW, "12.34")
        market.refresh()
        assert "updated_at >= ?" in engine.queries[-1]  # a refresh, not a full load
        micro_batch(settings, NOW + timedelta(minutes=30), "12.35")
        engine.is_failing = True
        with pytest.raises(QueryError):
            market.refresh()
        engine.is_failing = False
        market.refresh()
        reads = [sql for sql in engine.queries if "FROM market.ohlc_1m" in sql]
        assert "updated_at >= ?" not in reads[-1]
        assert hot_closes(client) == ["12.34"] * 30 + ["12.35"] * 30
