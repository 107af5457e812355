"""Yahoo's HTTP endpoints served locally from tests/fixtures/yahoo; yfinance's own code runs."""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import responses
from curl_cffi.const import CurlECode
from curl_cffi.requests.exceptions import code2error

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "yahoo"
SESSION_OPEN = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
CHART = re.compile(r"https://query2\.finance\.yahoo\.com/v8/finance/chart/(?P<symbol>[^?]+)")
# How each failure looks on the wire, and how many requests yfinance makes for it (it retries
# once, with the other cookie strategy, on any HTTP status >= 400).
FAILURES: dict[str, tuple[int, int, str, str]] = {
    "429": (429, 2, "rate_limited.txt", "text/plain"),
    "401": (401, 2, "unauthorized.json", "application/json"),  # a crumb Yahoo no longer takes
    "not_chart": (200, 1, "quote_empty.json", "application/json"),  # JSON, but no chart
    "html": (502, 2, "server_error.html", "text/html"),
    "down": (200, 1, "error_page.html", "text/html"),
    "empty": (200, 1, "", "application/json"),
    "timeout": (0, 1, "", ""),
    "http2_stream": (0, 1, "", ""),  # curl_cffi's HTTPError for a reset HTTP/2 stream
}

Response = tuple[int, dict[str, str], str]
# What fc.yahoo.com answers a client without cookies: a 404 page that sets Yahoo's A3 cookie,
# which yfinance then keeps in its cookie cache and sends with every request.
A3_COOKIE = (
    "A3=d=AQABBFakeCookie&S=AQAAAFake; Expires=Mon, 24 Nov 2031 14:30:00 GMT; "
    "Max-Age=157766400; Domain=.yahoo.com; Path=/; SameSite=None; Secure; HttpOnly"
)


class FakeClock:
    """A settable UTC clock, with a monotonic view for budgets and breakers."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._origin = start

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return (self.now - self._origin).total_seconds()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def curl_error(code: CurlECode, message: str) -> Exception:
    """The exception curl_cffi's session raises for ``code`` (its own code-to-class table)."""
    text = f"Failed to perform, curl: ({int(code)}) {message}."
    return code2error(code, text)(text, code, None)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text() if name else ""


class FakeYahoo:
    """Serves charts up to ``clock.now``, plus scripted failures; records every chart request.

    ``latency_s`` moves the clock on each chart request, as a slow Yahoo would; ``on_chart`` is
    called as one arrives.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.queued: dict[str, deque[str]] = defaultdict(deque)
        self.outage: str | None = None
        self.latency_s = 0.0
        self.on_chart: Callable[[], object] = lambda: None
        self.chart_requests: list[tuple[str, dict[str, str]]] = []
        self.mock = responses.RequestsMock(assert_all_requests_are_fired=False)

    def __enter__(self) -> FakeYahoo:
        self.mock.start()
        self.mock.add(
            responses.GET,
            "https://fc.yahoo.com/",
            status=404,
            body="",
            headers={"Set-Cookie": A3_COOKIE},
        )
        for host in ("query1", "query2"):
            self.mock.add(
                responses.GET, f"https://{host}.finance.yahoo.com/v1/test/getcrumb", body="Xy1crumb"
            )
        self.mock.add(responses.GET, re.compile(r"https://guce\.yahoo\.com/.*"), status=404)
        self.mock.add(
            responses.GET,
            re.compile(r"https://query2\.finance\.yahoo\.com/v10/finance/quoteSummary/.*"),
            status=404,
            body=fixture("quote_summary_not_found.json"),
            content_type="application/json",
        )
        self.mock.add(
            responses.GET,
            re.compile(r"https://query1\.finance\.yahoo\.com/v7/finance/quote.*"),
            body=fixture("quote_empty.json"),
            content_type="application/json",
        )
        self.mock.add_callback(responses.GET, CHART, callback=self._chart)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.mock.stop()
        self.mock.reset()

    def session(self) -> requests.Session:
        return requests.Session()

    def fail(self, symbol: str, kind: str, times: int = 1) -> None:
        """The next ``times`` yfinance calls for ``symbol`` fail as ``kind``."""
        self.queued[symbol].extend([kind] * (FAILURES[kind][1] * times))

    def data_requests(self, symbol: str | None = None) -> list[dict[str, str]]:
        """Intraday chart requests (not time-zone probes), optionally for one symbol."""
        return [
            params
            for sym, params in self.chart_requests
            if params.get("interval") != "1d" and (symbol is None or sym == symbol)
        ]

    def _chart(self, request: Any) -> Response:
        match = CHART.match(request.url)
        assert match is not None
        symbol = match.group("symbol")
        params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        self.chart_requests.append((symbol, params))
        self.on_chart()
        self.clock.advance(self.latency_s)
        kind = self.outage or (self.queued[symbol].popleft() if self.queued[symbol] else None)
        if kind is not None:
            status, _, body, content_type = FAILURES[kind]
            if kind == "timeout":
                raise requests.exceptions.ReadTimeout(f"{request.url}: read timed out")
            if kind == "http2_stream":
                raise curl_error(CurlECode.HTTP2_STREAM, "Stream error in the HTTP/2 framing layer")
            return status, {"Content-Type": content_type}, fixture(body)
        return self._bars(symbol, params)

    def _bars(self, symbol: str, params: dict[str, str]) -> Response:
        source = (
            FIXTURES / f"chart_{symbol}_{'1d' if params.get('interval') == '1d' else '1m'}.json"
        )
        if not source.exists():
            return 404, {"Content-Type": "application/json"}, fixture("chart_not_found.json")
        document = json.loads(source.read_text())
        if params.get("interval") == "1d":
            return 200, {"Content-Type": "application/json"}, json.dumps(document)
        result = document["chart"]["result"][0]
        low = int(params.get("period1", 0))
        # Yahoo serves the bar of the current minute too, still filling up.
        high = min(int(params.get("period2", 2**62)), int(self.clock.now.timestamp()) + 1)
        keep = [i for i, ts in enumerate(result["timestamp"]) if low <= ts < high]
        if not keep:
            empty = json.loads(fixture("chart_no_bars.json"))
            empty["chart"]["result"][0]["meta"] = result["meta"]
            return 200, {"Content-Type": "application/json"}, json.dumps(empty)
        sliced = copy.deepcopy(result)
        sliced["timestamp"] = [result["timestamp"][i] for i in keep]
        quote = result["indicators"]["quote"][0]
        sliced["indicators"]["quote"][0] = {k: [v[i] for i in keep] for k, v in quote.items()}
        body = {"chart": {"result": [sliced], "error": None}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)
