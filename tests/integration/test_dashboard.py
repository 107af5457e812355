"""The dashboard in headless Chromium against a real uvicorn server over a PyIceberg lake."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import ConsoleMessage, Page, Route, expect, sync_playwright

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
        expect(page.locator("#feed-status")).to_have_text("live")
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
        expect(page.locator("#feed-status")).to_have_text("live")
        loads = page.evaluate("performance.getEntriesByType('navigation').length")
        response = httpx.post(f"{server}/v1/alerts/events", json={"events": [alert]},
                              headers={"X-API-Key": API_KEY}, timeout=10)  # fmt: skip
        assert response.json() == {"accepted": 1, "duplicates": 0}
        item = page.wait_for_selector("#feed li[data-event-id='live-AAPL-1']", timeout=30_000)
        assert item is not None
        assert "CRITICAL AAPL aapl-breakout" in item.inner_text()
        assert "AAPL crossed above 200 at 201.5" in item.inner_text()
        assert page.evaluate("performance.getEntriesByType('navigation').length") == loads
        # One that fired earlier arrives later (read back after a reconnect, say): it goes below,
        # and a message of one long word (a silence of many matchers) does not widen the page.
        earlier = {**alert, "event_id": "live-AAPL-0", "fired_at": "2026-03-02T14:21:00Z",
                   "message": "|".join(f"SYM{n:03}" for n in range(250))}  # fmt: skip
        httpx.post(f"{server}/v1/alerts/events", json={"events": [earlier]},
                   headers={"X-API-Key": API_KEY}, timeout=10).raise_for_status()  # fmt: skip
        page.wait_for_selector("#feed li[data-event-id='live-AAPL-0']", timeout=30_000)
        order = page.eval_on_selector_all("#feed li", "items => items.map(i => i.dataset.eventId)")
        assert order.index("live-AAPL-1") < order.index("live-AAPL-0")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        browser.close()


def test_a_refused_key_is_said_where_the_feed_and_the_chart_report(server: str) -> None:
    with _page() as page:
        page.goto(f"{server}/#key=not-a-key")
        expect(page.locator("#feed-status")).to_have_text("offline: the API key was refused")
        expect(page.locator("#status")).to_contain_text("a valid X-API-Key header is required")


@contextmanager
def _page(errors: list[str] | None = None) -> Iterator[Page]:
    """A fresh browser (fresh storage); page errors go to ``errors``."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        if errors is not None:
            page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield page
        finally:
            browser.close()


def _problem(route: Route, status: int, detail: str) -> None:
    body = {"type": "about:blank", "title": "Error", "status": status, "detail": detail}
    route.fulfill(status=status, content_type="application/problem+json", body=json.dumps(body))


def test_the_symbol_list_is_retried_until_data_lands(server: str) -> None:
    answers = iter(["failed", "empty"])  # then the real list

    def symbols(route: Route) -> None:
        answer = next(answers, None)
        if answer == "failed":
            _problem(route, 503, "lake unavailable")
        elif answer == "empty":
            route.fulfill(json={"symbols": []})
        else:
            route.continue_()

    with _page() as page:
        page.route("**/v1/symbols", symbols)
        page.goto(f"{server}/#key={API_KEY}")
        expect(page.locator("#status")).to_have_text("lake unavailable")
        _expect_chart_matches_api(page, server, "AAPL", "1m")
        expect(page.locator("#symbol option")).to_have_text(["AAPL", "MSFT", "NVDA"])
        expect(page.locator("#status")).to_have_text("")


def _range_end(last_tick: str) -> str:
    """dashboard.js rangeFor's end: the minute after the last tick's, plus one."""
    last = datetime.fromisoformat(last_tick.replace("Z", "+00:00"))
    minute = last.replace(second=0, microsecond=0)
    if minute < last:
        minute += timedelta(minutes=1)
    return (minute + timedelta(minutes=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_a_switch_ends_the_chart_at_the_freshest_last_tick(server: str) -> None:
    fresh = {s["symbol"]: s for s in _api(server, "/v1/symbols")["symbols"]}
    answered = []

    def symbols(route: Route) -> None:
        if answered:  # data landed since the page opened
            route.continue_()
            return
        body = route.fetch().json()
        for symbol in body["symbols"]:  # the page opened two days ago
            last = datetime.fromisoformat(symbol["last_tick"].replace("Z", "+00:00"))
            symbol["last_tick"] = (last - timedelta(days=2)).isoformat()
        answered.append(body)
        route.fulfill(json=body)

    with _page() as page:
        page.route("**/v1/symbols", symbols)
        page.goto(f"{server}/#key={API_KEY}")
        stale = _chart(page, "AAPL", "1m")
        assert stale["end"] == _range_end(answered[0]["symbols"][0]["last_tick"])
        page.click("#intervals button[data-interval='1h']")
        assert _chart(page, "AAPL", "1h")["end"] == _range_end(fresh["AAPL"]["last_tick"])
        page.select_option("#symbol", "NVDA")
        assert _chart(page, "NVDA", "1h")["end"] == _range_end(fresh["NVDA"]["last_tick"])
        assert page.input_value("#symbol") == "NVDA"  # the refreshed list kept the choice


def test_a_failed_switch_says_which_chart_failed_and_a_late_error_is_ignored(server: str) -> None:
    held: list[Route] = []
    with _page() as page:
        page.route("**/v1/symbols/MSFT/ohlc?*", lambda route: _problem(route, 500, "lake down"))
        page.route("**/v1/symbols/NVDA/ohlc?*", lambda route: held.append(route))
        page.goto(f"{server}/#key={API_KEY}")
        _expect_chart_matches_api(page, server, "AAPL", "1m")

        page.select_option("#symbol", "MSFT")
        expect(page.locator("#chart-status")).to_have_text("MSFT 1m bars failed: lake down")
        expect(page.locator("#chart-title")).to_have_text("MSFT · 1m · failed")
        assert page.evaluate("() => window.finlakeDashboard.candles.data().length") == 0
        expect(page.locator("#quality-status")).to_have_text("")  # its own panel, its own status

        # NVDA's request hangs, AAPL is chosen meanwhile, then NVDA's fails: too late to matter.
        with page.expect_request("**/v1/symbols/NVDA/ohlc?*"):
            page.select_option("#symbol", "NVDA")
        page.select_option("#symbol", "AAPL")
        _expect_chart_matches_api(page, server, "AAPL", "1m")
        expect(page.locator("#chart-status")).to_have_text("")
        assert len(held) == 1
        _problem(held[0], 500, "NVDA failed late")
        page.wait_for_function("() => window.finlakeDashboard.barLoads === 0")
        expect(page.locator("#chart-status")).to_have_text("")
        expect(page.locator("#status")).to_have_text("")
        expect(page.locator("#chart-title")).to_contain_text("AAPL · 1m")


class _SilencingProxy:
    """A TCP proxy in front of the API that can make the alert stream's connection go silent
    without closing it (a laptop asleep, a proxy dropping it without a reset)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = int(upstream.rsplit(":", 1)[1])
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.streams: list[threading.Event] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def silence_streams(self) -> None:
        for silent in self.streams:
            silent.set()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            silent = threading.Event()
            threading.Thread(
                target=self._requests, args=(client, upstream, silent), daemon=True
            ).start()
            threading.Thread(
                target=self._responses, args=(upstream, client, silent), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, silent: threading.Event
    ) -> None:
        try:
            while data := client.recv(65536):
                if b"GET /v1/alerts/stream" in data:
                    self.streams.append(silent)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client, upstream)

    def _responses(
        self, upstream: socket.socket, client: socket.socket, silent: threading.Event
    ) -> None:
        try:
            while data := upstream.recv(65536):
                if not silent.is_set():  # silenced: read and dropped, the client hears nothing
                    client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client, upstream)


def _shut(*sockets: socket.socket) -> None:
    for sock in sockets:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def test_a_silently_dead_alert_stream_is_noticed_and_reconnected(server: str) -> None:
    proxy = _SilencingProxy(server)
    try:
        with _page() as page:
            page.goto(f"{proxy.url}/#key={API_KEY}")
            feed_status = page.locator("#feed-status")
            expect(feed_status).to_have_text("live")
            proxy.silence_streams()  # keep-alives stop arriving; the socket stays open
            expect(feed_status).to_have_text("reconnecting")
            expect(feed_status).to_have_text("live", timeout=30_000)  # a new stream
    finally:
        proxy.close()


def test_a_cleanly_closed_alert_stream_shows_reconnecting(server: str) -> None:
    with _page() as page:
        page.route(
            "**/v1/alerts/stream",
            lambda route: route.fulfill(
                content_type="text/event-stream", body="retry: 5000\nevent: ready\ndata: {}\n\n"
            ),
        )
        page.goto(f"{server}/#key={API_KEY}")
        expect(page.locator("#feed-status")).to_have_text("reconnecting")


def test_the_key_is_kept_for_the_tab_only_and_a_bad_key_link_is_explained(server: str) -> None:
    errors: list[str] = []
    with _page(errors) as page:
        page.goto(f"{server}/static/dashboard.css")  # the origin, not the page
        page.evaluate("() => localStorage.setItem('finlake-api-key', 'from-an-older-version')")
        page.goto(f"{server}/#key={API_KEY}")
        _chart(page, "AAPL", "1m")
        assert page.evaluate("() => sessionStorage.getItem('finlake-api-key')") == API_KEY
        assert page.evaluate("() => localStorage.getItem('finlake-api-key')") is None
        assert page.evaluate("() => location.hash") == ""
    with _page(errors) as page:
        page.goto(f"{server}/#key=%E0%A4%A")
        expect(page.locator("#key-status")).to_contain_text("not a valid URL-encoded key")
        assert page.evaluate("() => location.hash") == ""
        page.reload()  # not a dead page on every reload either
        expect(page.locator("#status")).not_to_have_text("")  # the keyless API said why
        expect(page.locator("#key-status")).to_have_text("")
    assert errors == []
