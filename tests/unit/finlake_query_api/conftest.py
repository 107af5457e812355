"""A lake built once with PyIceberg, apps over it, and an engine that counts its calls.

tests/integration/test_query_api_trino.py runs these modules' tests again against Trino by
overriding ``engine``, ``client`` and ``make_settings``: tests that build their own app over the
shared lake take their settings from ``make_settings``, never from ``lake_home`` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from finlake.query import DuckDBEngine, Engine, QueryResult
from finlake_query_api.config import Settings
from finlake_query_api.main import create_app
from tests.unit.finlake_query_api.lake_data import NOW, build_lake

API_KEY = "test-key-0123456789abcdef"


class CountingEngine:
    """A real engine (DuckDB or Trino), counting lake queries and snapshot polls.

    ``queries`` holds each query's SQL text and ``params`` the values bound to it, in order.
    """

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.queries: list[str] = []
        self.params: list[tuple[object, ...]] = []
        self.snapshot_polls = 0

    def query(self, sql: str, params: Sequence[object] = ()) -> QueryResult:
        self.queries.append(sql)
        self.params.append(tuple(params))
        return self.inner.query(sql, params)

    def query_arrow(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        self.queries.append(sql)
        self.params.append(tuple(params))
        return self.inner.query_arrow(sql, params)

    def snapshot_id(self, table: str) -> int | None:
        self.snapshot_polls += 1
        return self.inner.snapshot_id(table)


API_DEFAULTS: dict[str, Any] = {
    "api_keys": [API_KEY],
    "publisher_keys": [API_KEY],
    "refresh_interval_s": 3600,
    "rate_limit": "10000/minute",
}


def api_settings(home: Path, **api: Any) -> Settings:
    return Settings.model_validate({"home": home, "api": {**API_DEFAULTS, **api}})


@pytest.fixture(scope="session")
def lake_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("api-lake")
    build_lake(Settings.model_validate({"home": home}))
    return home


@pytest.fixture(scope="session")
def make_settings(lake_home: Path) -> Callable[..., Settings]:
    """API settings over the shared lake; keyword arguments override ``api`` fields."""
    return lambda **api: api_settings(lake_home, **api)


@pytest.fixture(scope="module")
def engine(lake_home: Path) -> CountingEngine:
    return CountingEngine(DuckDBEngine(api_settings(lake_home), metadata_ttl_s=1.0))


@pytest.fixture(scope="module")
def client(make_settings: Callable[..., Settings], engine: CountingEngine) -> Iterator[TestClient]:
    app = create_app(make_settings(), engine=engine, clock=lambda: NOW)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as test_client:
        yield test_client
