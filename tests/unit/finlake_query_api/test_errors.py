from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking._model_registry import utils as registry_uris
from mlflow.tracking._tracking_service import utils as tracking_uris

from finlake_query_api.config import Settings
from finlake_query_api.main import create_app
from tests.conftest import free_port
from tests.unit.finlake_query_api.conftest import (
    API_DEFAULTS,
    API_KEY,
    CountingEngine,
    api_settings,
)
from tests.unit.finlake_query_api.lake_data import NOW, build_lake

PROBLEM = "application/problem+json"


def _problem(client: TestClient, url: str, status: int, **params: str) -> str:
    response = client.get(url, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    detail: str = body["detail"]
    return detail


def test_unknown_symbol_is_404(client: TestClient) -> None:
    assert "ZZZZ" in _problem(client, "/v1/symbols/ZZZZ/ohlc", 404)
    _problem(client, "/v1/symbols/ZZZZ/metrics", 404)
    _problem(client, "/v1/quotes/latest", 404, symbol="ZZZZ")
    # Yahoo's index tickers start with ^: a symbol ingestion takes is not malformed here.
    for symbol in ("%5EGSPC", "BRK_B", "X" * 32):
        assert "no data" in _problem(client, f"/v1/symbols/{symbol}/ohlc", 404).lower(), symbol


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"start": "2026-11-26T00:00:00Z", "end": "2026-11-25T00:00:00Z"}, 400, "before end"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2026-11-25T00:00:00Z"}, 400, "too large"),
        ({"start": "0001-01-01T00:00:00Z"}, 400, "must lie in"),
        ({"end": "0001-01-01T00:00:00Z"}, 400, "must lie in"),
        ({"start": "0001-01-01T00:00:00+05:00"}, 400, "must lie in"),  # before year 1 in UTC
        ({"end": "0001-01-01T00:00:00+05:00"}, 400, "must lie in"),
        ({"start": "9999-12-31T23:00:00-05:00"}, 400, "must lie in"),  # after year 9999 in UTC
        ({"end": "9999-12-31T23:00:00-05:00"}, 400, "must lie in"),
        ({"interval": "5m"}, 422, "interval"),
        ({"limit": "10001"}, 422, "limit"),
        ({"limit": "0"}, 422, "limit"),
        ({"start": "yesterday"}, 422, "start"),
        ({"cursor": "bm9wZQ"}, 400, "cursor"),
        ({"cursor": "MWh8MA", "interval": "1m"}, 400, "interval 1h"),
        ({"cursor": "' OR 1=1 --"}, 422, "cursor"),
        ({"cursor": "MWR8MjUzNDAyMzAwNzk5MDAwMDAw", "interval": "1d"}, 400, "cursor"),  # 9999-12-31
        ({"cursor": "MW18MjUzNDAyMzAwNzk5MDAwMDAw", "interval": "1m"}, 400, "cursor"),
        ({"start": "2026-11-25T00:00:00Z'; DROP TABLE market.ohlc_1m; --"}, 422, "start"),
    ],
)
def test_bad_ohlc_input_is_a_clear_problem(
    client: TestClient, params: dict[str, str], status: int, words: str
) -> None:
    assert words in _problem(client, "/v1/symbols/AAPL/ohlc", status, **params)


@pytest.mark.parametrize("bound", ["start", "end"])
@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_metrics_over_a_moment_past_what_utc_holds_is_a_clear_problem(
    client: TestClient, bound: str, moment: str
) -> None:
    params = {bound: moment, "interval": "1d"}
    assert "must lie in" in _problem(client, "/v1/symbols/AAPL/metrics", 400, **params)


@pytest.mark.parametrize(
    "symbol", ["AAPL' OR '1'='1", "AAPL;DROP TABLE x", "%27%20OR%201%3D1", "A" * 40, "_x"]
)
def test_injection_in_the_symbol_is_rejected(client: TestClient, symbol: str) -> None:
    response = client.get(f"/v1/symbols/{symbol}/ohlc")
    assert response.status_code in (404, 422)
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("endpoint", ["ohlc", "metrics"])
def test_the_symbol_reaches_the_engine_as_a_bound_parameter(
    client: TestClient, engine: CountingEngine, endpoint: str
) -> None:
    # The path pattern keeps quotes out, but what it lets through (., -, =, ^) must not become
    # SQL either: the symbol is bound, never part of the query text.
    start = NOW - timedelta(days=9, hours=12)  # before the hot window: the lake is asked
    window = {
        "interval": "1h",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=5)).isoformat(),
    }
    asked = len(engine.queries)
    assert client.get(f"/v1/symbols/MSFT/{endpoint}", params=window).status_code == 200
    calls = list(zip(engine.queries[asked:], engine.params[asked:], strict=True))
    bars = [(sql, bound) for sql, bound in calls if "FROM market.ohlc_1h" in sql]
    assert bars, calls
    for sql, bound in bars:
        assert "MSFT" not in sql
        assert bound[0] == "MSFT"


def test_data_endpoints_need_a_valid_key(client: TestClient) -> None:
    for url in ("/v1/symbols", "/v1/symbols/AAPL/ohlc", "/v1/quotes/latest", "/v1/quality"):
        for headers in ({"X-API-Key": ""}, {"X-API-Key": "wrong"}):
            response = client.get(url, headers=headers)
            assert response.status_code == 401
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["www-authenticate"].startswith("ApiKey")


def test_probes_and_metrics_are_open(client: TestClient) -> None:
    client.get("/v1/symbols")
    for url in ("/healthz", "/readyz", "/metrics"):
        assert client.get(url, headers={"X-API-Key": ""}).status_code == 200
    metrics = client.get("/metrics").text
    assert 'finlake_api_requests_total{method="GET",route="/v1/symbols",status="200"}' in metrics
    assert "finlake_api_ready 1.0" in metrics


def test_rate_limit_is_per_key(make_settings: Callable[..., Settings]) -> None:
    other = "another-key-abcdef0123456"
    settings = make_settings(rate_limit="3/minute", api_keys=[API_KEY, other])
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        statuses = [
            client.get("/v1/symbols", headers={"X-API-Key": API_KEY}).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        limited = client.get("/v1/symbols", headers={"X-API-Key": API_KEY})
        assert limited.headers["content-type"] == PROBLEM
        assert int(limited.headers["retry-after"]) >= 1
        assert client.get("/v1/symbols", headers={"X-API-Key": other}).status_code == 200


def test_cors_allows_only_configured_origins(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(cors_origins=["https://ops.example"])
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        allowed = client.get("/healthz", headers={"Origin": "https://ops.example"})
        denied = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://ops.example"
    assert "access-control-allow-origin" not in denied.headers


def test_lake_without_tables_is_not_a_server_error(tmp_path: Path) -> None:
    app = create_app(api_settings(tmp_path), clock=lambda: NOW)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as client:
        assert client.get("/v1/symbols").json() == {"symbols": []}
        _problem(client, "/v1/symbols/AAPL/ohlc", 404)
        layers = client.get("/v1/quality").json()["layers"]
        assert {layer["is_available"] for layer in layers} == {False}


def test_a_lake_down_before_the_first_poll_is_a_503_not_a_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Trino unreachable from the start (the real client against a closed port): every data
    endpoint says the lake is unavailable, as it does once polling has begun. Where Trino is
    (and why it did not answer) goes to the log, not to API clients."""
    settings = Settings.model_validate({
        "home": tmp_path, "api": {**API_DEFAULTS, "engine": "trino"},
        "trino": {"port": free_port(), "retries": 1, "request_timeout_s": 2},
    })  # fmt: skip
    port = str(settings.trino.port)
    urls: list[tuple[str, dict[str, str]]] = [
        ("/v1/symbols", {}), ("/v1/symbols/AAPL/ohlc", {}), ("/v1/quotes/latest", {}),
        ("/v1/quality", {}), ("/v1/transactions/summary", {"account_id": "acc1"}),
        ("/v1/transactions/predictions", {}),
    ]  # fmt: skip
    with TestClient(create_app(settings, clock=lambda: NOW), headers={"X-API-Key": API_KEY}) as c:
        for url, params in urls:
            assert _problem(c, url, 503, **params) == "the lake could not answer", url
            assert c.get(url, params=params).headers["retry-after"] == "5", url
        assert c.get("/readyz").status_code == 503
    said = [r.getMessage() for r in caplog.records if r.name == "finlake_query_api.api.problems"]
    assert said, "the cause is logged"
    assert all(port in message for message in said), said


def test_a_catalog_database_down_at_start_is_a_503_until_it_answers(tmp_path: Path) -> None:
    """The DuckDB engine's catalog DB cannot be opened when the API starts (its folder is not
    there yet: a real SQLite error, as a PostgreSQL that is still starting): the API starts,
    answers 503 saying so, and serves once the database can be opened."""
    catalog_db = tmp_path / "not-yet" / "catalog.db"
    settings = Settings.model_validate({
        "home": tmp_path, "api": API_DEFAULTS,
        "lake": {"catalog_url": f"jdbc:sqlite:{catalog_db}", "warehouse": tmp_path.as_uri()},
    })  # fmt: skip
    with TestClient(create_app(settings, clock=lambda: NOW), headers={"X-API-Key": API_KEY}) as c:
        for url in ("/v1/symbols", "/v1/quotes/latest", "/v1/quality"):
            detail = _problem(c, url, 503)
            assert "the lake's catalog did not answer" in detail, url
            assert "not-yet" not in detail, detail  # the catalog's path: logs only
            assert "sqlite" not in detail.lower(), detail
        assert c.get("/readyz").status_code == 503
        upload = c.post("/v1/transactions/uploads", content=b"transaction_id\n")
        assert upload.status_code == 503, upload.text
        assert upload.json()["detail"] == "the lake's catalog did not answer"
        assert upload.headers["retry-after"] == "5"
        catalog_db.parent.mkdir()
        assert c.get("/v1/symbols").json() == {"symbols": []}


def test_lake_files_that_cannot_be_read_are_a_503(tmp_path: Path) -> None:
    """The object store stops answering for a table's metadata: a 503 saying so (and to retry),
    not a 500; where the files are is not the client's business."""
    build_lake(Settings.model_validate({"home": tmp_path}))
    app = create_app(api_settings(tmp_path, response_cache_entries=0), clock=lambda: NOW)
    old = {"interval": "1m", "start": f"{NOW - timedelta(days=9):%Y-%m-%dT%H:%M:%SZ}", "limit": 5}
    with TestClient(app, headers={"X-API-Key": API_KEY}) as c:
        assert c.get("/v1/symbols/AAPL/ohlc", params=old).json()["source"] == "lake"
        metadata = list(tmp_path.rglob("ohlc_1m/metadata/*.metadata.json"))
        assert metadata
        for path in metadata:
            path.rename(path.with_name(path.name + ".away"))
        time.sleep(1.2)  # past the engine's metadata TTL: the next request reads the catalog
        answer = c.get("/v1/symbols/AAPL/ohlc", params=old)
        assert answer.status_code == 503, answer.text
        assert answer.json()["detail"] == "the lake's storage did not answer"
        assert answer.headers["retry-after"] == "5"


@pytest.fixture
def mlflow_unreachable(monkeypatch: pytest.MonkeyPatch) -> str:
    """The API's MLflow tracking URI: a closed local port, asked once (no retries)."""
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("FINLAKE_ML__TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    # The scorer sets MLflow's process-wide URIs (and their env variables): put them back after.
    monkeypatch.setattr(tracking_uris, "_tracking_uri", tracking_uris._tracking_uri)
    monkeypatch.setattr(registry_uris, "_registry_uri", registry_uris._registry_uri)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    return uri


def test_a_model_registry_that_does_not_answer_is_a_503(
    tmp_path: Path, mlflow_unreachable: str, caplog: pytest.LogCaptureFixture
) -> None:
    transaction = {"account_id": "acc1", "timestamp": "2026-11-26T12:00:00Z", "amount": "4.99",
                   "currency": "EUR", "merchant": "Corner Grocer", "country": "DE",
                   "channel": "pos"}  # fmt: skip
    app = create_app(api_settings(tmp_path), clock=lambda: NOW)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as client:
        answer = client.post("/v1/predict", json=transaction)
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["detail"] == "the model registry did not answer"
    said = [r.getMessage() for r in caplog.records if r.name == "finlake_query_api.api.problems"]
    assert any(mlflow_unreachable in message for message in said), said  # the cause: logs only
