"""The query API's suite against the real Trino 476 of `finlake stack up --with trino`.

The unit modules' tests are imported and collected here a second time, with ``engine``,
``client`` and ``make_settings`` overridden: the same behaviours, answered by Trino over the
profile's lake (PostgreSQL JDBC catalog, SeaweedFS S3 warehouse), written with PyIceberg by the
same ``build_lake`` the DuckDB suite uses. Then every endpoint is asked the same questions on both
engines, with the hot tier off so that each answer comes from the engine, and must match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from finlake.config import FinlakeSettings
from finlake.lake.connection import lake_connection, open_catalog
from finlake.query import TableNotFoundError
from finlake.stack.manager import Stack
from finlake.trino_engine import TrinoEngine
from finlake_query_api.bars import Interval, encode_cursor
from finlake_query_api.config import Settings
from finlake_query_api.main import create_app
from tests.integration.conftest import empty_lake
from tests.unit.finlake_query_api.conftest import API_DEFAULTS, API_KEY, CountingEngine
from tests.unit.finlake_query_api.lake_data import NOW, build_lake
from tests.unit.finlake_query_api.test_bars import (  # noqa: F401  (collected here too)
    test_lake_pages_walk_every_bar_once,
)
from tests.unit.finlake_query_api.test_errors import (  # noqa: F401
    test_bad_ohlc_input_is_a_clear_problem,
    test_cors_allows_only_configured_origins,
    test_data_endpoints_need_a_valid_key,
    test_injection_in_the_symbol_is_rejected,
    test_probes_and_metrics_are_open,
    test_rate_limit_is_per_key,
    test_the_symbol_reaches_the_engine_as_a_bound_parameter,
    test_unknown_symbol_is_404,
)
from tests.unit.finlake_query_api.test_market_views import (  # noqa: F401
    test_latest_quote_is_the_close_of_the_latest_minute,
    test_metrics_are_computed_from_the_bars_of_the_window,
    test_metrics_of_an_empty_window_are_null,
    test_quality_reports_each_layer_with_counts_rules_and_lag,
    test_symbols_carry_first_and_last_tick,
)
from tests.unit.finlake_query_api.test_ohlc import (  # noqa: F401
    test_bars_older_than_the_hot_window_come_from_the_lake,
    test_cursor_pagination_walks_every_bar_once,
    test_daily_bars_open_with_the_first_hour_and_close_with_the_last,
    test_hot_and_lake_serve_identical_bars,
    test_one_day_of_minute_bars_comes_from_memory_without_touching_the_lake,
)


@pytest.fixture(scope="module")
def trino_lake(trino_profile: Stack) -> FinlakeSettings:
    """The profile's lake, emptied and filled with the API suite's tables."""
    settings = trino_profile.settings
    empty_lake(settings)
    build_lake(settings)
    return settings


@pytest.fixture(scope="module")
def make_settings(trino_lake: FinlakeSettings) -> Callable[..., Settings]:
    """API settings that select the Trino engine of the profile."""

    def make(**api: Any) -> Settings:
        return Settings.model_validate(
            {**trino_lake.model_dump(), "api": {**API_DEFAULTS, "engine": "trino", **api}}
        )

    return make


@pytest.fixture(scope="module")
def engine(trino_lake: FinlakeSettings) -> CountingEngine:
    return CountingEngine(TrinoEngine(trino_lake.trino))


@pytest.fixture(scope="module")
def client(make_settings: Callable[..., Settings], engine: CountingEngine) -> Iterator[TestClient]:
    app = create_app(make_settings(), engine=engine, clock=lambda: NOW)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as test_client:
        yield test_client


def test_the_api_lake_lives_in_postgresql_and_s3(trino_lake: FinlakeSettings) -> None:
    lake = lake_connection(trino_lake)
    assert lake.jdbc_url.startswith("jdbc:postgresql://")
    assert lake.warehouse.startswith("s3://")
    assert not (trino_lake.home / "catalog.db").exists()
    engine = TrinoEngine(trino_lake.trino)
    assert engine.query("SELECT count(*) FROM market.ohlc_1h")[1] == [(2 * 10 * 24,)]


def test_the_app_built_from_settings_uses_trino(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(), clock=lambda: NOW)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as test_client:
        assert app.state.finlake.market.engine.name == "trino"
        assert test_client.get("/readyz").status_code == 200


CURSOR = encode_cursor(Interval.MINUTE, datetime(2026, 11, 20, 11, 29, tzinfo=UTC))
QUESTIONS: list[tuple[str, dict[str, str]]] = [
    ("/v1/symbols", {}),
    ("/v1/quotes/latest", {}),
    ("/v1/quotes/latest", {"symbol": "MSFT"}),
    ("/v1/quality", {}),
    ("/v1/symbols/AAPL/ohlc", {}),
    ("/v1/symbols/MSFT/ohlc", {"interval": "1m", "start": "2026-11-20T10:00:00Z",
                               "end": "2026-11-20T14:00:00Z", "limit": "100"}),
    ("/v1/symbols/AAPL/ohlc", {"interval": "1m", "start": "2026-11-20T10:00:00Z",
                               "end": "2026-11-20T14:00:00Z", "limit": "100",
                               "cursor": CURSOR}),
    ("/v1/symbols/AAPL/ohlc", {"interval": "1h", "start": "2026-11-16T00:00:00Z",
                               "end": "2026-11-27T00:00:00Z", "limit": "50"}),
    ("/v1/symbols/AAPL/ohlc", {"interval": "1d", "start": "2026-11-01T00:00:00Z",
                               "end": "2026-11-27T00:00:00Z"}),
    ("/v1/symbols/MSFT/metrics", {"interval": "1m", "start": "2026-11-25T00:00:00Z",
                                  "end": "2026-11-26T00:00:00Z"}),
    ("/v1/symbols/MSFT/metrics", {"interval": "1h"}),
    ("/v1/symbols/AAPL/metrics", {"interval": "1d", "start": "2026-11-16T00:00:00Z",
                                  "end": "2026-11-27T00:00:00Z"}),
    ("/v1/symbols/AAPL/metrics", {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z"}),
    ("/v1/symbols/ZZZZ/ohlc", {}),
    ("/v1/quotes/latest", {"symbol": "AAPL' OR '1'='1"}),
    ("/v1/symbols/AAPL/ohlc", {"start": "2026-11-26T00:00:00Z", "end": "2026-11-25T00:00:00Z"}),
]  # fmt: skip


def _answers(settings: Settings) -> list[tuple[int, Any]]:
    with TestClient(create_app(settings, clock=lambda: NOW), headers={"X-API-Key": API_KEY}) as c:
        return [
            (response.status_code, response.json())
            for response in (c.get(url, params=params) for url, params in QUESTIONS)
        ]


@pytest.mark.parametrize("hot_window_days", [0, 7], ids=["lake", "hot"])
def test_trino_answers_equal_duckdb_answers_for_the_same_lake(
    make_settings: Callable[..., Settings], tmp_path: Path, hot_window_days: int
) -> None:
    # DuckDB has no S3 (httpfs) extension here, so it reads the same tables, built by the same
    # deterministic build_lake, from a local SQLite catalog and warehouse.
    local = Settings.model_validate({"home": tmp_path})
    build_lake(local)
    duckdb_settings = Settings.model_validate(
        {"home": tmp_path, "api": {**API_DEFAULTS, "hot_window_days": hot_window_days}}
    )
    trino = _answers(make_settings(hot_window_days=hot_window_days))
    duckdb = _answers(duckdb_settings)
    assert [status for status, _ in trino] == [200] * 13 + [404, 404, 400]
    for (url, params), trino_answer, duckdb_answer in zip(QUESTIONS, trino, duckdb, strict=True):
        assert trino_answer == duckdb_answer, (url, params)
    ohlc = [body for (url, _), (_, body) in zip(QUESTIONS, trino, strict=True) if "ohlc" in url]
    assert all(page["bars"] for page in ohlc[:-2])
    if hot_window_days == 0:
        assert {page["source"] for page in ohlc[:-2]} == {"lake"}


def test_predictions_before_the_transactions_namespace_exists_are_an_empty_page(
    trino_lake: FinlakeSettings, client: TestClient
) -> None:
    # Trino reports a missing schema as a query error, not as a missing table (was a 500).
    assert not open_catalog(trino_lake).namespace_exists("transactions")
    answer = client.get("/v1/transactions/predictions")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": []}


def test_a_table_in_a_schema_not_created_yet_is_a_missing_table(
    trino_lake: FinlakeSettings,
) -> None:
    """A fresh install's API on Trino: before the first pipeline run creates the namespace, the
    market tables are missing tables (an empty answer, the API ready), not a failing lake."""
    assert not open_catalog(trino_lake).namespace_exists("alerts_not_yet")
    with pytest.raises(TableNotFoundError):
        TrinoEngine(trino_lake.trino).query("SELECT count(*) FROM alerts_not_yet.events")
