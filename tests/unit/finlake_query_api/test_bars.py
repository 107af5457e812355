"""The column-wise renderer of lake bars against the per-row one, value for value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
from fastapi.testclient import TestClient

from finlake_query_api.bars import BAR_COLUMNS, Bar, render_bar, render_bars_arrow
from tests.unit.finlake_query_api.lake_data import NOW

START = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
PRICE = pa.decimal128(10, 2)
VWAP = pa.decimal128(18, 6)


def _bars() -> list[Bar]:
    odd = [Decimal("0.01"), Decimal("12345678.90"), Decimal("0.00"), Decimal("100.10")]
    bars = []
    for n, price in enumerate(odd):
        vwap = [Decimal("0.000001"), None, Decimal("0.000000"), Decimal("99999999.123456")][n]
        start, end = START + timedelta(minutes=n), START + timedelta(minutes=n + 1)
        bars.append(Bar(start, end, price, price, price, price, n * 10**12, n, vwap))
    return bars


def _table(bars: list[Bar], price: pa.DataType = PRICE, vwap: pa.DataType = VWAP) -> pa.Table:
    types = [pa.timestamp("us", tz="UTC")] * 2 + [price] * 4 + [pa.int64()] * 2 + [vwap]
    columns = [[bar[index] for bar in bars] for index in range(len(types))]
    arrays = [pa.array(values, kind) for values, kind in zip(columns, types, strict=True)]
    return pa.Table.from_arrays(arrays, names=BAR_COLUMNS.split(", "))


def test_arrow_rendering_equals_the_per_row_rendering() -> None:
    bars = _bars()
    assert render_bars_arrow(_table(bars)) == [render_bar(bar) for bar in bars]
    assert render_bars_arrow(_table([])) == []


def test_values_without_an_exact_column_wise_text_fall_back_to_the_per_row_path() -> None:
    bars = _bars()
    fractional = [bars[0]._replace(window_start=START + timedelta(microseconds=5))]
    assert render_bars_arrow(_table(fractional)) is None
    assert render_bars_arrow(_table(bars, vwap=pa.decimal128(18, 7))) is None  # 1E-7 in Python
    floats = _table(bars).set_column(2, "open", pa.array([1.5] * 4))
    assert render_bars_arrow(floats) is None


def test_lake_pages_walk_every_bar_once(client: TestClient) -> None:
    start = (NOW - timedelta(days=9)).isoformat()
    end = (NOW - timedelta(days=8, hours=23)).isoformat()
    params = {"interval": "1m", "start": start, "end": end}
    full = client.get("/v1/symbols/AAPL/ohlc", params={**params, "limit": 5000}).json()
    assert full["source"] == "lake"
    pages, cursor = [], None
    while True:
        query = {**params, "limit": 7, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/symbols/AAPL/ohlc", params=query).json()
        assert page["source"] == "lake"
        assert len(page["bars"]) <= 7
        pages.extend(page["bars"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == full["bars"]
    assert len(pages) == 60


def test_a_refresh_merges_rewritten_and_new_bars_and_drops_those_before_the_cutoff() -> None:
    from finlake_query_api.hot_tier import HotSeries, _merged

    def series(bars: list[Bar]) -> HotSeries:
        return HotSeries(
            [b.window_start for b in bars], [render_bar(b) for b in bars], _table(bars)
        )

    old = _bars()[:3]
    rewritten = old[2]._replace(close=Decimal("1.23"))
    new = _bars()[3]
    merged = _merged(series(old), series([rewritten, new]), old[1].window_start)
    assert merged.bars == [old[1], rewritten, new]
    assert merged.fragments == [render_bar(bar) for bar in merged.bars]
    assert merged.starts == [bar.window_start for bar in merged.bars]
