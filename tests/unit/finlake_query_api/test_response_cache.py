from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from finlake_query_api.bars import Interval
from finlake_query_api.config import Settings
from finlake_query_api.main import create_app
from tests.unit.finlake_query_api.conftest import API_KEY, CountingEngine
from tests.unit.finlake_query_api.lake_data import NOW

START = NOW - timedelta(days=9, hours=12)
LAKE_PAGE = {
    "interval": "1h",
    "start": START.isoformat(),
    "end": (START + timedelta(hours=5)).isoformat(),
}


def _app(
    make_settings: Callable[..., Settings], engine: CountingEngine, **api: object
) -> TestClient:
    return TestClient(create_app(make_settings(**api), engine=engine, clock=lambda: NOW))


def test_a_repeated_read_is_answered_from_memory(
    make_settings: Callable[..., Settings], engine: CountingEngine
) -> None:
    with _app(make_settings, engine) as client:
        headers = {"X-API-Key": API_KEY}
        first = client.get("/v1/symbols/AAPL/ohlc", params=LAKE_PAGE, headers=headers)
        queries = len(engine.queries)
        second = client.get("/v1/symbols/AAPL/ohlc", params=LAKE_PAGE, headers=headers)
        assert first.status_code == second.status_code == 200
        assert first.json()["source"] == "lake"
        assert "x-cache" not in first.headers
        assert second.headers["x-cache"] == "hit"
        assert second.content == first.content
        assert len(engine.queries) == queries  # the lake was not asked again
        metrics = client.get("/metrics").text
        assert "finlake_api_cache_hits_total 1.0" in metrics
        assert 'route="/v1/symbols/{symbol}/ohlc"' in metrics


def test_a_cached_page_still_needs_a_valid_key_and_counts_against_the_limit(
    make_settings: Callable[..., Settings], engine: CountingEngine
) -> None:
    with _app(make_settings, engine, rate_limit="2/minute") as client:
        headers = {"X-API-Key": API_KEY}
        assert client.get("/v1/symbols/AAPL/ohlc", params=LAKE_PAGE, headers=headers).is_success
        anonymous = client.get("/v1/symbols/AAPL/ohlc", params=LAKE_PAGE)
        wrong = client.get("/v1/symbols/AAPL/ohlc", params=LAKE_PAGE, headers={"X-API-Key": "x"})
        assert (anonymous.status_code, wrong.status_code) == (401, 401)
        assert client.get("/v1/symbols/AAPL/ohlc", params=LAKE_PAGE, headers=headers).is_success
        limited = client.get("/v1/symbols/AAPL/ohlc", params=LAKE_PAGE, headers=headers)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"


def test_errors_and_other_queries_are_not_cached(
    make_settings: Callable[..., Settings], engine: CountingEngine
) -> None:
    with _app(make_settings, engine) as client:
        headers = {"X-API-Key": API_KEY}
        for _ in range(2):
            missing = client.get("/v1/symbols/NOPE/ohlc", params=LAKE_PAGE, headers=headers)
            assert missing.status_code == 404
            assert "x-cache" not in missing.headers
        other = client.get(
            "/v1/symbols/AAPL/ohlc", params={**LAKE_PAGE, "interval": "1d"}, headers=headers
        )
        assert other.status_code == 200
        assert "x-cache" not in other.headers


def test_the_cache_can_be_turned_off(
    make_settings: Callable[..., Settings], engine: CountingEngine
) -> None:
    with _app(make_settings, engine, response_cache_entries=0) as client:
        headers = {"X-API-Key": API_KEY}
        client.get("/v1/symbols/AAPL/ohlc", params=LAKE_PAGE, headers=headers)
        queries = len(engine.queries)
        again = client.get("/v1/symbols/AAPL/ohlc", params=LAKE_PAGE, headers=headers)
        assert "x-cache" not in again.headers
        assert len(engine.queries) == queries + 1


def _page_from(client: TestClient, origin: str | None) -> Response:
    headers = {"X-API-Key": API_KEY, **({"Origin": origin} if origin else {})}
    return client.get("/v1/symbols/AAPL/ohlc", params=LAKE_PAGE, headers=headers)


@pytest.mark.parametrize("filled_by", [None, "https://a.example"])
def test_a_cached_page_gets_the_cors_headers_of_each_request_origin(
    make_settings: Callable[..., Settings], engine: CountingEngine, filled_by: str | None
) -> None:
    # The cached headers must not carry the Origin of the request that filled the entry.
    origins = ["https://a.example", "https://b.example"]
    with _app(make_settings, engine, cors_origins=origins) as client:
        first = _page_from(client, filled_by)
        assert first.headers.get("access-control-allow-origin") == filled_by
        # Allowed origins get their own; another or none gets no allow-origin header.
        answers = [("https://a.example",) * 2, ("https://b.example",) * 2]
        for origin, allowed in [*answers, ("https://evil.example", None), (None, None)]:
            response = _page_from(client, origin)
            assert response.headers["x-cache"] == "hit"
            assert response.headers.get("access-control-allow-origin") == allowed, origin


def test_a_page_read_while_a_new_snapshot_loads_is_not_cached_as_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poller loads the hot tier for a new snapshot while requests keep coming: a page
    computed from the old bars in that moment must not be served once the new bars are in."""
    from finlake.query import DuckDBEngine
    from tests.unit.finlake_query_api.conftest import api_settings
    from tests.unit.finlake_query_api.lake_data import build_lake, minute_bars, write

    settings = api_settings(tmp_path, response_cache_entries=64)
    build_lake(settings, symbols=("AAPL",))
    later = NOW + timedelta(hours=1)
    app = create_app(settings, engine=DuckDBEngine(settings), clock=lambda: later)
    params = {"interval": "1m", "start": NOW.isoformat(), "end": later.isoformat()}
    with TestClient(app, headers={"X-API-Key": API_KEY}) as client:
        url = "/v1/symbols/AAPL/ohlc"
        assert client.get(url, params=params).json()["bars"] == []
        write(settings, {"market.ohlc_1m": minute_bars(["AAPL"], NOW, 60)})
        market = app.state.finlake.market
        load = market.hot.load
        during: list[int] = []

        def load_while_a_request_comes(interval: Interval, snapshot_id: int | None) -> None:
            if interval is Interval.MINUTE:
                during.append(len(client.get(url, params=params).json()["bars"]))
            load(interval, snapshot_id)

        monkeypatch.setattr(market.hot, "load", load_while_a_request_comes)
        market.refresh()
        monkeypatch.setattr(market.hot, "load", load)
        assert during == [0]  # the old snapshot's answer, while the new one loaded
        after = client.get(url, params=params)
        assert len(after.json()["bars"]) == 60, after.headers.get("x-cache")
