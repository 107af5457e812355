from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from fastapi.testclient import TestClient

from finlake.query import DuckDBEngine
from finlake_query_api.bars import timestamp_text
from finlake_query_api.config import Settings
from finlake_query_api.main import create_app
from finlake_query_api.schemas import OhlcPage
from tests.unit.finlake_query_api.conftest import API_KEY, CountingEngine, api_settings
from tests.unit.finlake_query_api.lake_data import NOW, write

DAY_AGO = (NOW - timedelta(days=1)).isoformat()
END = NOW.isoformat()


def _ohlc(client: TestClient, symbol: str = "AAPL", **params: Any) -> dict[str, Any]:
    response = client.get(f"/v1/symbols/{symbol}/ohlc", params=params)
    assert response.status_code == 200, response.text
    OhlcPage.model_validate_json(response.content)  # the body honours the documented model
    body: dict[str, Any] = response.json()
    return body


def test_one_day_of_minute_bars_comes_from_memory_without_touching_the_lake(
    client: TestClient, engine: CountingEngine
) -> None:
    queries, polls = len(engine.queries), engine.snapshot_polls
    page = _ohlc(client, interval="1m", start=DAY_AGO, end=END, limit=2000)
    assert page["source"] == "hot"
    assert len(page["bars"]) == 1440
    assert page["bars"][0]["window_start"] == "2026-11-25T16:00:00Z"
    assert page["bars"][-1]["window_end"] == "2026-11-26T16:00:00Z"
    assert (len(engine.queries), engine.snapshot_polls) == (queries, polls)


def test_hot_and_lake_serve_identical_bars(
    client: TestClient, make_settings: Callable[..., Settings]
) -> None:
    cold_app = create_app(make_settings(hot_window_days=0), clock=lambda: NOW)
    with TestClient(cold_app, headers={"X-API-Key": API_KEY}) as cold:
        for interval in ("1m", "1h", "1d"):
            params = {"interval": interval, "start": "2026-11-22T00:00:00Z", "end": END}
            hot, lake = _ohlc(client, **params), _ohlc(cold, **params)
            assert (hot["source"], lake["source"]) == ("hot", "lake")
            assert hot["bars"] == lake["bars"]
            assert hot["bars"]


def test_bars_older_than_the_hot_window_come_from_the_lake(client: TestClient) -> None:
    start = NOW - timedelta(days=9, hours=12)
    page = _ohlc(
        client, interval="1h", start=start.isoformat(), end=(start + timedelta(hours=5)).isoformat()
    )
    assert page["source"] == "lake"
    assert [bar["window_start"] for bar in page["bars"]][:2] == [
        "2026-11-17T04:00:00Z", "2026-11-17T05:00:00Z",
    ]  # fmt: skip


def test_daily_bars_open_with_the_first_hour_and_close_with_the_last(client: TestClient) -> None:
    hours = _ohlc(client, interval="1h", start="2026-11-24T00:00:00Z", end="2026-11-25T00:00:00Z")
    [day] = _ohlc(client, interval="1d", start="2026-11-24T00:00:00Z", end="2026-11-25T00:00:00Z")[
        "bars"
    ]
    assert len(hours["bars"]) == 24
    assert day["open"] == hours["bars"][0]["open"]
    assert day["close"] == hours["bars"][-1]["close"]
    assert day["high"] == str(max(Decimal(bar["high"]) for bar in hours["bars"]))
    assert day["low"] == str(min(Decimal(bar["low"]) for bar in hours["bars"]))
    assert day["volume"] == sum(bar["volume"] for bar in hours["bars"])


def test_cursor_pagination_walks_every_bar_once(client: TestClient) -> None:
    for start in (DAY_AGO, (NOW - timedelta(days=9)).isoformat()):  # hot, then lake
        end = (NOW - timedelta(days=8, hours=23)).isoformat() if start != DAY_AGO else END
        full = _ohlc(client, interval="1m", start=start, end=end, limit=5000)["bars"]
        pages, cursor = [], None
        while True:
            params = {"interval": "1m", "start": start, "end": end, "limit": 250}
            page = _ohlc(client, **params, **({"cursor": cursor} if cursor else {}))
            pages.extend(page["bars"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == full
        assert len(full) in (1440, 60)


def test_new_snapshot_refreshes_the_hot_tier(tmp_path: Path) -> None:
    from tests.unit.finlake_query_api.lake_data import build_lake, minute_bars

    build_lake(api_settings(tmp_path), symbols=("AAPL",))
    engine = CountingEngine(DuckDBEngine(api_settings(tmp_path)))
    app = create_app(api_settings(tmp_path), engine=engine, clock=lambda: NOW + timedelta(hours=1))
    with TestClient(app, headers={"X-API-Key": API_KEY}) as client:
        params = {"interval": "1m", "start": END, "end": (NOW + timedelta(hours=1)).isoformat()}
        assert _ohlc(client, **params)["bars"] == []
        write(api_settings(tmp_path), {"market.ohlc_1m": minute_bars(["AAPL"], NOW, 60)})
        assert _ohlc(client, **params)["bars"] == []  # not polled yet: still the old snapshot
        app.state.finlake.market.refresh()  # what the background poller does every interval
        queries = len(engine.queries)
        page = _ohlc(client, **params)
        assert (page["source"], len(page["bars"])) == ("hot", 60)
        assert len(engine.queries) == queries


def test_a_new_snapshot_reads_only_the_bars_written_since_the_last_one(tmp_path: Path) -> None:
    from pyiceberg.expressions import And, EqualTo

    from finlake.query import lake_catalog
    from tests.unit.finlake_query_api.lake_data import build_lake, minute_bars

    settings = api_settings(tmp_path)
    build_lake(settings, symbols=("AAPL",))
    engine = CountingEngine(DuckDBEngine(settings))
    app = create_app(settings, engine=engine, clock=lambda: NOW)
    cold = create_app(api_settings(tmp_path, hot_window_days=0), clock=lambda: NOW)
    params = {"interval": "1m", "start": (NOW - timedelta(hours=2)).isoformat(), "end": END}
    with (
        TestClient(app, headers={"X-API-Key": API_KEY}) as client,
        TestClient(cold, headers={"X-API-Key": API_KEY}) as lake,
    ):
        before = _ohlc(client, **params)["bars"]
        # A late tick rewrote one bar, and a new symbol started trading, both written later.
        later = NOW + timedelta(minutes=5)
        target = NOW - timedelta(hours=1)

        def written_later(bars: pa.Table) -> pa.Table:
            stamps = pa.array([later] * bars.num_rows, pa.timestamp("us", tz="UTC"))
            return bars.set_column(bars.schema.get_field_index("updated_at"), "updated_at", stamps)

        row = written_later(minute_bars(["AAPL"], target, 60, seed=99).slice(0, 1))
        table = lake_catalog(settings).load_table("market.ohlc_1m")
        table.overwrite(
            row, And(EqualTo("symbol", "AAPL"), EqualTo("window_start", target.isoformat()))
        )
        write(settings, {"market.ohlc_1m": written_later(minute_bars(["NVDA"], NOW, 60))})
        queries = len(engine.queries)
        app.state.finlake.market.refresh()
        assert len(engine.queries) == queries + 1
        assert "updated_at >= ?" in engine.queries[-1]  # the week was not read again
        after = _ohlc(client, **params)
        assert after["source"] == "hot"
        cold.state.finlake.market.refresh()  # the lake engine binds the new snapshot too
        assert after["bars"] == _ohlc(lake, **params)["bars"]
        changed = [i for i, (a, b) in enumerate(zip(before, after["bars"], strict=True)) if a != b]
        assert [after["bars"][i]["window_start"] for i in changed] == [
            target.isoformat().replace("+00:00", "Z")
        ]
        nvda = {"interval": "1m", "start": END, "end": (NOW + timedelta(hours=1)).isoformat()}
        assert len(_ohlc(client, "NVDA", **nvda)["bars"]) == 60


def test_a_commit_landing_after_a_newer_stamped_one_still_reaches_the_hot_tier(
    tmp_path: Path,
) -> None:
    """The hourly batch stamps its bars when it starts and MERGEs minutes later; a stream
    micro-batch stamped in between commits first. The batch's bars are older than the newest
    stamp held by then, yet new: the hot tier must serve them, as the lake does."""
    from pyiceberg.expressions import And, EqualTo

    from finlake.query import lake_catalog
    from tests.unit.finlake_query_api.lake_data import build_lake, minute_bars

    settings = api_settings(tmp_path, response_cache_entries=0)
    build_lake(settings, symbols=("AAPL",))
    clock = lambda: NOW + timedelta(hours=1)  # noqa: E731
    app = create_app(settings, engine=DuckDBEngine(settings), clock=clock)
    cold = create_app(
        api_settings(tmp_path, hot_window_days=0, response_cache_entries=0), clock=clock
    )

    def stamped(bars: pa.Table, at: datetime) -> pa.Table:
        stamps = pa.array([at] * bars.num_rows, pa.timestamp("us", tz="UTC"))
        return bars.set_column(bars.schema.get_field_index("updated_at"), "updated_at", stamps)

    window = {"interval": "1m", "start": (NOW - timedelta(hours=2)).isoformat(),
              "end": (NOW + timedelta(hours=1)).isoformat(), "limit": 1000}  # fmt: skip
    with (
        TestClient(app, headers={"X-API-Key": API_KEY}) as client,
        TestClient(cold, headers={"X-API-Key": API_KEY}) as lake,
    ):
        stream = stamped(minute_bars(["AAPL"], NOW, 60), NOW + timedelta(minutes=5))
        write(settings, {"market.ohlc_1m": stream})
        app.state.finlake.market.refresh()
        target = NOW - timedelta(hours=1)
        batch = stamped(
            minute_bars(["AAPL"], target, 60, seed=99).slice(0, 1), NOW + timedelta(minutes=2)
        )
        lake_catalog(settings).load_table("market.ohlc_1m").overwrite(
            batch, And(EqualTo("symbol", "AAPL"), EqualTo("window_start", target.isoformat()))
        )
        app.state.finlake.market.refresh()
        cold.state.finlake.market.refresh()
        hot = _ohlc(client, **window)
        assert hot["source"] == "hot"
        assert hot["bars"] == _ohlc(lake, **window)["bars"]
        rewritten = next(b for b in hot["bars"] if b["window_start"] == timestamp_text(target))
        assert Decimal(rewritten["open"]) == Decimal(str(batch.column("open")[0].as_py()))


def test_daily_bars_are_the_whole_utc_days_starting_in_the_window(client: TestClient) -> None:
    """As with 1m and 1h bars: the bars whose window starts in [start, end), each whole. A
    start inside a day does not pull that day's earlier hours in; an end inside a day does not
    cut the last day short."""
    window = {"start": "2026-11-23T20:00:00Z", "end": "2026-11-25T04:00:00Z"}
    days = _ohlc(client, interval="1d", **window)
    assert (days["start"], days["end"]) == (window["start"], window["end"])
    assert [(b["window_start"], b["window_end"]) for b in days["bars"]] == [
        ("2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"),
        ("2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z"),
    ]
    hours = _ohlc(client, interval="1h", start="2026-11-24T00:00:00Z",
                  end="2026-11-26T00:00:00Z")["bars"]  # fmt: skip
    for day in days["bars"]:
        of_day = [h for h in hours if h["window_start"][:10] == day["window_start"][:10]]
        assert len(of_day) == 24
        assert day["volume"] == sum(h["volume"] for h in of_day)
        assert (day["open"], day["close"]) == (of_day[0]["open"], of_day[-1]["close"])
    metrics = client.get("/v1/symbols/AAPL/metrics", params={"interval": "1d", **window}).json()
    assert metrics["bar_count"] == 2
    assert metrics["volume"] == sum(day["volume"] for day in days["bars"])


def test_a_hot_page_builds_only_the_bars_on_it(tmp_path: Path) -> None:
    """Each new snapshot replaces a changed symbol's series: a 10-bar page of it must not turn
    the whole week of bars (10,080 a symbol) into objects on the event loop."""
    from finlake_query_api.bars import Interval
    from tests.unit.finlake_query_api.lake_data import build_lake

    build_lake(api_settings(tmp_path), symbols=("AAPL",))
    app = create_app(api_settings(tmp_path, response_cache_entries=0), clock=lambda: NOW)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as client:
        page = _ohlc(client, interval="1m", start=DAY_AGO, end=END, limit=10)
        assert (page["source"], len(page["bars"])) == ("hot", 10)
        series = app.state.finlake.market.hot.series(Interval.MINUTE, "AAPL")
        assert series.rows is not None
        assert series.rows.num_rows > 1000
        assert series._bars is None, "a 10-bar page built every bar of the series"
        assert series.bars_between(5, 15) == series.bars[5:15]  # as if all were built
