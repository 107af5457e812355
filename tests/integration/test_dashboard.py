"""The dashboard in headless Chromium against a real uvicorn server over a PyIceberg lake."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import ConsoleMessage, Page, sync_playwright

from finlake_query_api.main import create_app
from tests.conftest import free_port
from tests.unit.finlake_query_api.conftest import API_KEY, api_settings
from tests.unit.finlake_query_api.lake_data import NOW, build_lake

ROOT = Path(__file__).parent.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    subprocess.run([ROOT / "services/query_api/scripts/vendor_assets.sh"], check=True, timeout=300)
    home = tmp_path_factory.mktemp("dashboard-lake")
    build_lake(api_settings(home), symbols=("AAPL", "MSFT", "NVDA"))
    app = create_app(api_settings(home, keepalive_s=0.2), clock=lambda: NOW)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _api(base: str, path: str, **params: str) -> dict[str, Any]:
    response = httpx.get(base + path, params=params, headers={"X-API-Key": API_KEY}, timeout=30)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _chart(page: Page, symbol: str, interval: str) -> dict[str, str]:
    page.wait_for_function(
        "([s, i]) => { const c = document.getElementById('chart');"
        " return c.dataset.symbol === s && c.dataset.interval === i; }",
        arg=[symbol, interval],
        timeout=30_000,
    )
    data: dict[str, str] = page.eval_on_selector("#chart", "c => ({...c.dataset})")
    return data


def _expect_chart_matches_api(page: Page, base: str, symbol: str, interval: str) -> None:
    shown = _chart(page, symbol, interval)
    bars = _api(base, f"/v1/symbols/{symbol}/ohlc", interval=interval, start=shown["start"],
                end=shown["end"], limit="10000")["bars"]  # fmt: skip
    assert bars, f"the API has no {interval} bars for {symbol}"
    assert int(shown["barCount"]) == len(bars)
    assert shown["firstStart"] == bars[0]["window_start"]
    assert shown["lastClose"] == bars[-1]["close"]
    plotted = page.evaluate("() => window.finlakeDashboard.candles.data().length")
    assert plotted == len(bars)


def test_dashboard_shows_api_bars_and_switches_symbol_and_interval(
    server: str, artifacts_dir: Path
) -> None:
    assert CHROMIUM.exists(), "install Debian's chromium: apt-get install -y chromium"
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 800})

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server}/#key={API_KEY}")
        _expect_chart_matches_api(page, server, "AAPL", "1m")

        page.select_option("#symbol", "MSFT")
        _expect_chart_matches_api(page, server, "MSFT", "1m")
        for interval in ("1h", "1d"):
            page.click(f"#intervals button[data-interval='{interval}']")
            _expect_chart_matches_api(page, server, "MSFT", interval)

        page.wait_for_selector("#quality tbody tr[data-layer='silver']")
        assert "price_positive: 3" in page.inner_text("#quarantine")
        page.wait_for_function("document.getElementById('feed-status').textContent === 'live'")
        page.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=True)
        browser.close()
    assert errors == []


def test_alert_stream_sends_ready_then_keepalives(server: str) -> None:
    headers = {"X-API-Key": API_KEY}
    with httpx.stream("GET", f"{server}/v1/alerts/stream", headers=headers, timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        received = ""
        for chunk in stream.iter_text():
            received += chunk
            if received.count(": keep-alive") >= 2:
                break
    assert received.startswith("retry: 5000\nevent: ready\n")


def test_alert_stream_needs_a_key(server: str) -> None:
    response = httpx.get(f"{server}/v1/alerts/stream", timeout=10)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_a_posted_alert_appears_in_the_live_feed_without_a_reload(server: str) -> None:
    alert = {
        "event_id": "live-AAPL-1", "rule": "aapl-breakout", "kind": "price_cross",
        "symbol": "AAPL", "severity": "critical", "window_start": "2026-03-02T14:30:00Z",
        "window_end": "2026-03-02T14:31:00Z", "fired_at": "2026-03-02T14:31:00Z",
        "value": 201.5, "threshold": 200.0, "message": "AAPL crossed above 200 at 201.5",
    }  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{server}/#key={API_KEY}")
        page.wait_for_function("document.getElementById('feed-status').textContent === 'live'")
        loads = page.evaluate("performance.getEntriesByType('navigation').length")
        response = httpx.post(f"{server}/v1/alerts/events", json={"events": [alert]},
                              headers={"X-API-Key": API_KEY}, timeout=10)  # fmt: skip
        assert response.json() == {"accepted": 1, "duplicates": 0}
        item = page.wait_for_selector("#feed li[data-event-id='live-AAPL-1']", timeout=30_000)
        assert item is not None
        assert "CRITICAL AAPL aapl-breakout" in item.inner_text()
        assert "AAPL crossed above 200 at 201.5" in item.inner_text()
        assert page.evaluate("performance.getEntriesByType('navigation').length") == loads
        browser.close()
