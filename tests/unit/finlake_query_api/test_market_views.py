from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient

from finlake_query_api.main import create_app
from tests.unit.finlake_query_api.conftest import API_KEY, api_settings
from tests.unit.finlake_query_api.lake_data import NOW, build_lake, ticks, write


def test_symbols_carry_first_and_last_tick(client: TestClient) -> None:
    assert client.get("/v1/symbols").json() == {
        "symbols": [
            {"symbol": "AAPL", "first_tick": "2026-11-16T16:00:00Z",
             "last_tick": "2026-11-26T15:59:30Z"},
            {"symbol": "MSFT", "first_tick": "2026-11-16T16:00:00Z",
             "last_tick": "2026-11-26T15:59:30Z"},
        ]
    }  # fmt: skip


def test_latest_quote_is_the_close_of_the_latest_minute(client: TestClient) -> None:
    [last] = client.get(
        "/v1/symbols/MSFT/ohlc",
        params={"start": "2026-11-26T15:59:00Z", "end": "2026-11-26T16:00:00Z"},
    ).json()["bars"]
    quotes = client.get("/v1/quotes/latest", params={"symbol": "MSFT"}).json()["quotes"]
    assert quotes == [
        {"symbol": "MSFT", "price": last["close"], "as_of": "2026-11-26T16:00:00Z",
         "volume": last["volume"]}
    ]  # fmt: skip
    assert [q["symbol"] for q in client.get("/v1/quotes/latest").json()["quotes"]] == [
        "AAPL", "MSFT",
    ]  # fmt: skip


def test_metrics_are_computed_from_the_bars_of_the_window(client: TestClient) -> None:
    params = {"interval": "1h", "start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z"}
    bars = client.get("/v1/symbols/AAPL/ohlc", params=params).json()["bars"]
    metrics = client.get("/v1/symbols/AAPL/metrics", params=params).json()
    closes = [float(bar["close"]) for bar in bars]
    volume = sum(bar["volume"] for bar in bars)
    vwap = sum(Decimal(bar["vwap"]) * bar["volume"] for bar in bars) / volume
    assert metrics["bar_count"] == 24
    assert metrics["volume"] == volume
    assert Decimal(metrics["vwap"]) == vwap.quantize(Decimal("0.000001"))
    assert metrics["simple_return"] == float(
        Decimal(bars[-1]["close"]) / Decimal(bars[0]["open"]) - 1
    )
    realized = math.sqrt(sum(math.log(b / a) ** 2 for a, b in itertools.pairwise(closes)))
    assert math.isclose(metrics["realized_volatility"], realized)
    assert realized > 0


def test_metrics_of_an_empty_window_are_null(client: TestClient) -> None:
    params = {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z"}
    metrics = client.get("/v1/symbols/AAPL/metrics", params=params).json()
    assert (metrics["bar_count"], metrics["vwap"], metrics["realized_volatility"]) == (
        0,
        None,
        None,
    )


def test_quality_reports_each_layer_with_counts_rules_and_lag(client: TestClient) -> None:
    quality = client.get("/v1/quality").json()
    layers = {layer["layer"]: layer for layer in quality["layers"]}
    assert layers["gold_1m"]["row_count"] == 2 * 10 * 24 * 60
    assert layers["gold_1h"]["row_count"] == 2 * 10 * 24
    assert layers["silver"]["max_event_time"] == "2026-11-26T15:59:30Z"
    assert layers["silver"]["lag_seconds"] == 30.0
    assert layers["bronze"]["lag_seconds"] == 20.0
    assert layers["dead_letter"]["is_available"] is False
    assert quality["quarantine_by_rule"] == {"late": 2, "price_positive": 3}
    assert quality["quarantined_rows"] == 5
    assert quality["duplicate_rows"] == 6
    assert quality["last_run"]["batch_id"] == 1


def test_a_tick_from_a_skewed_clock_does_not_make_a_stalled_bronze_look_fresh(
    tmp_path: Path,
) -> None:
    settings = api_settings(tmp_path)
    build_lake(settings, symbols=("AAPL",))
    later = NOW + timedelta(hours=6)  # the feed stalled six hours ago
    app = create_app(settings, clock=lambda: later)
    write(settings, {"market.raw": ticks(["AAPL"], NOW, datetime(2099, 1, 1, tzinfo=UTC))})
    with TestClient(app, headers={"X-API-Key": API_KEY}) as client:
        layers = {layer["layer"]: layer for layer in client.get("/v1/quality").json()["layers"]}
    bronze = layers["bronze"]
    assert bronze["row_count"] == 4  # the future tick is counted, not trusted as event time
    assert bronze["max_event_time"] == "2026-11-26T16:00:00Z"
    assert bronze["lag_seconds"] == 6 * 3600.0
