from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from fastapi.testclient import TestClient

from finlake_query_api.main import create_app
from tests.unit.finlake_query_api.conftest import API_KEY, api_settings
from tests.unit.finlake_query_api.lake_data import (
    NOW,
    TS,
    build_lake,
    hour_bars,
    minute_bars,
    ticks,
    write,
)


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


def test_a_single_bar_has_no_realized_volatility(client: TestClient) -> None:
    """One bar has one close, so no return: volatility unknown (null), not zero; two have one."""
    start = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    for minutes, is_known in ((1, False), (2, True)):
        params = {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=minutes)).isoformat(),
        }
        metrics = client.get("/v1/symbols/AAPL/metrics", params=params).json()
        assert metrics["bar_count"] == minutes
        assert metrics["simple_return"] is not None
        assert (metrics["realized_volatility"] is not None) == is_known, metrics


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


def test_gold_freshness_and_quotes_are_as_of_the_last_merge_of_the_bar_still_filling(
    tmp_path: Path,
) -> None:
    """At 16:58:30 the stream last merged AAPL's minute 16:58-16:59 and hour 16:00-17:00 at
    16:58:10: gold is 20 s behind, not 30 s (the minute's start) or nearly an hour (the hour's),
    and the quote is as of 16:58:10, not 16:59. MSFT's writer clock runs 5 s ahead of ours: its
    quote is as of now, never later."""
    settings = api_settings(tmp_path, response_cache_entries=0)
    build_lake(settings, symbols=("AAPL", "MSFT"))
    now = NOW + timedelta(minutes=58, seconds=30)
    merged = {"AAPL": NOW + timedelta(minutes=58, seconds=10), "MSFT": now + timedelta(seconds=5)}
    for symbol, last_merge in merged.items():
        minutes = minute_bars([symbol], NOW, 60)
        # Finished minutes were last merged just after they ended; the filling one at last_merge.
        stamps = [end + timedelta(seconds=5) for end in minutes.column("window_end").to_pylist()]
        stamps[58] = last_merge
        minutes = minutes.set_column(
            minutes.schema.get_field_index("updated_at"), "updated_at", pa.array(stamps, TS)
        )
        hours = hour_bars(minutes)
        hours = hours.set_column(
            hours.schema.get_field_index("updated_at"), "updated_at", pa.array([last_merge], TS)
        )
        write(settings, {"market.ohlc_1m": minutes.slice(0, 59), "market.ohlc_1h": hours})
    with TestClient(create_app(settings, clock=lambda: now), headers={"X-API-Key": API_KEY}) as c:
        layers = {layer["layer"]: layer for layer in c.get("/v1/quality").json()["layers"]}
        quotes = {q["symbol"]: q["as_of"] for q in c.get("/v1/quotes/latest").json()["quotes"]}
    for layer in ("gold_1m", "gold_1h"):
        assert layers[layer]["max_event_time"] == "2026-11-26T16:58:10Z", layer
        assert layers[layer]["lag_seconds"] == 20.0, layer
    assert quotes == {"AAPL": "2026-11-26T16:58:10Z", "MSFT": "2026-11-26T16:58:30Z"}
