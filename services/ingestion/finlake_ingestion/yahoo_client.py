"""Yahoo Finance bars through yfinance's own request and parsing code, errors sorted by kind."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import yfinance as yf
from curl_cffi import requests as curl_requests  # yfinance's HTTP client, hence always installed
from curl_cffi.const import CurlECode
from curl_cffi.curl import CurlError
from yfinance.data import YfData
from yfinance.exceptions import (
    YFDataException,
    YFPricesMissingError,
    YFRateLimitError,
    YFTickerMissingError,
)

from finlake.contracts.models import MarketTick
from finlake.errors import FinlakeError


@dataclass(frozen=True)
class BarLimits:
    """How far back Yahoo serves a bar size, and the longest span one request may ask for."""

    history: timedelta
    per_request: timedelta


# yfinance 1.7.0 scrapers/history.py: 1m bars reach back 30 days, 2m-30m 60 days, 1h 730 days
# (``min_lookbacks``); one 1m request spans at most 8 days (``period="max"``; Yahoo answers a
# longer one "Only 8 days worth of 1m granularity data are allowed to be fetched per request").
# The limits have moved before (yfinance #2706), hence a day's margin per request and
# HISTORY_MARGIN on the whole.
BAR_LIMITS = {
    "1m": BarLimits(history=timedelta(days=30), per_request=timedelta(days=7)),
    "2m": BarLimits(history=timedelta(days=60), per_request=timedelta(days=60)),
    "5m": BarLimits(history=timedelta(days=60), per_request=timedelta(days=60)),
    "15m": BarLimits(history=timedelta(days=60), per_request=timedelta(days=60)),
    "60m": BarLimits(history=timedelta(days=730), per_request=timedelta(days=730)),
}
HISTORY_MARGIN = timedelta(minutes=5)
BAR_SIZES = {name: timedelta(minutes=int(name[:-1])) for name in BAR_LIMITS}
# Yahoo's venue codes -> ISO 10383 MIC; other codes pass through as Yahoo spells them.
YAHOO_VENUES = {
    "NMS": "XNAS",
    "NGM": "XNAS",
    "NCM": "XNAS",
    "NAS": "XNAS",
    "NYQ": "XNYS",
    "ASE": "XASE",
    "PCX": "ARCX",
    "BTS": "BATS",
    "LSE": "XLON",
    "GER": "XETR",
    "PAR": "XPAR",
    "TOR": "XTSE",
    "JPX": "XJPX",
    "HKG": "XHKG",
}
# Failure kinds that say Yahoo (or the way to it) is unwell: they feed the circuit breaker. A
# crumb Yahoo no longer accepts fails every request alike until yfinance gets a new one.
UNHEALTHY = frozenset(
    {"rate_limited", "timeout", "network", "bad_response", "server_error", "unauthorized"}
)
# curl_cffi raises these transport failures as HTTPError (HTTP/2 or /3 framing, a body cut short)
# or ProxyError: Yahoo, or the way to it, did not answer properly, as with a dropped connection.
CURL_TRANSPORT_FAILURES = frozenset(
    {
        CurlECode.HTTP2,
        CurlECode.HTTP2_STREAM,
        CurlECode.HTTP3,
        CurlECode.PARTIAL_FILE,
        CurlECode.COULDNT_RESOLVE_PROXY,
        CurlECode.PROXY,
    }
)


class RequestRefused(FinlakeError):
    """The poller refused to send a request to Yahoo (it is stopping)."""


class YahooFetchError(FinlakeError):
    """A Yahoo request for one symbol failed; ``kind`` says how."""

    def __init__(self, symbol: str, kind: str, detail: str) -> None:
        super().__init__(f"yahoo {symbol}: {kind}: {detail}")
        self.symbol = symbol
        self.kind = kind
        self.detail = detail


def _type_names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def classify(error: BaseException) -> str | None:
    """The kind of a yfinance failure; None when it only means "no bars in this range"."""
    names = _type_names(error)
    if isinstance(error, YFRateLimitError):
        return "rate_limited"
    if isinstance(error, YFPricesMissingError):
        reason = (error.yahoo_reason or "").lower()
        if not reason:
            return None
        return "unknown_symbol" if "delisted" in reason or "not found" in reason else "rejected"
    if isinstance(error, YFTickerMissingError):
        return "unknown_symbol"
    if names & {"Timeout", "ReadTimeout", "ConnectTimeout", "TimeoutError"}:
        return "timeout"
    if isinstance(error, CurlError) and error.code in CURL_TRANSPORT_FAILURES:
        return "network"
    if "HTTPError" in names:
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", 0) or 0
        return "unknown_symbol" if status == 404 else status_kind(status)
    if names & {"ConnectionError", "ChunkedEncodingError", "RemoteDisconnected"}:
        return "network"
    if isinstance(error, YFDataException | ValueError | KeyError | TypeError | IndexError):
        # Empty bodies, HTML error pages, "Will be right back", malformed JSON.
        return "bad_response"
    return "other"


def status_kind(status: int) -> str:
    """The kind of an answer Yahoo sent instead of a chart, by its HTTP status."""
    if status in (401, 403):
        return "unauthorized"
    if status >= 500:
        return "server_error"
    return "http_error" if status >= 400 else "bad_response"


def is_chart(meta: Mapping[str, Any]) -> bool:
    """Whether yfinance's ``history_metadata`` holds the meta block of a chart Yahoo sent."""
    # yfinance keeps the chart's meta, or nothing when the body was no chart (plus its own key
    # "YF repair?" either way). Every chart has the exchange's time zone: yfinance's probe of a
    # new symbol reads it there.
    return "exchangeTimezoneName" in meta


class YahooClient:
    """One yfinance ``Ticker`` per symbol; ``fetch`` returns the bars of a range as ticks.

    Every HTTP request yfinance makes goes through this client's session: ``on_request`` is
    called before each one goes out (and may refuse it by raising ``RequestRefused``), and each
    waits at most ``timeout_s``.
    """

    def __init__(
        self,
        *,
        interval: str,
        prepost: bool,
        timeout_s: float,
        session: requests.Session | None = None,
        cache_dir: Path | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.interval = interval
        self.prepost = prepost
        self.timeout_s = timeout_s
        self.on_request: Callable[[], None] = lambda: None
        # None: the session yfinance makes by default (curl_cffi impersonating a browser, which
        # Yahoo requires), made here to see its requests; tests pass a requests.Session whose
        # HTTP layer they serve locally.
        self._session: requests.Session | curl_requests.Session[curl_requests.Response] = (
            curl_requests.Session(impersonate="chrome") if session is None else session
        )
        self._send: Callable[..., Any] = self._session.request
        # Both session types route get() and post() through request(): this sees yfinance's
        # cookie, crumb and consent requests and its repeat of any answer >= 400 too.
        self._session.request = self._request  # type: ignore[method-assign]  # see above
        self._last_response: Any = None
        self._wall_clock = wall_clock
        self._tickers: dict[str, yf.Ticker] = {}
        # Errors must reach us as exceptions: by default yfinance logs them and returns nothing.
        yf.config.debug.hide_exceptions = False
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            yf.set_tz_cache_location(str(cache_dir))

    def is_new(self, symbol: str) -> bool:
        """Whether the next fetch of ``symbol`` may first probe its time zone (one more request)."""
        return symbol not in self._tickers

    def forget(self, symbol: str) -> None:
        """Drop the cached ``Ticker`` (its time zone lookup is redone next time)."""
        self._tickers.pop(symbol, None)

    @staticmethod
    def start_cycle() -> None:
        """Drop yfinance's in-process response cache, which would replay a bad answer forever."""
        YfData.cache_get.cache_clear()

    def fetch(self, symbol: str, start: datetime, end: datetime | None = None) -> list[MarketTick]:
        """Bars from ``start`` (inclusive) to ``end`` (exclusive; None: now).

        Raises YahooFetchError, or RequestRefused when ``on_request`` refused a request.
        """
        try:
            ticker = self._tickers.get(symbol)
            if ticker is None:
                ticker = self._tickers[symbol] = yf.Ticker(symbol, session=self._session)
            with warnings.catch_warnings():
                # yfinance's pandas deprecations are not ours to fix (pytest makes them errors).
                warnings.filterwarnings("ignore", category=DeprecationWarning, module="yfinance")
                warnings.filterwarnings("ignore", category=FutureWarning, module="yfinance")
                frame = ticker.history(
                    start=start,
                    end=end,
                    interval=self.interval,
                    prepost=self.prepost,
                    auto_adjust=False,
                    actions=False,
                    timeout=self.timeout_s,
                )
                meta: dict[str, Any] = {
                    key: ticker.history_metadata.get(key) for key in ("currency", "exchangeName")
                }
        except RequestRefused:
            raise
        except Exception as error:  # yfinance raises many unrelated types; all are sorted here
            kind, detail = classify(error), f"{type(error).__name__}: {error}"
            if kind is None:
                if is_chart(self._tickers[symbol].history_metadata):
                    return []  # a chart without bars: there are none in the range
                # yfinance reads any JSON as "no bars", a 401 {"finance": {"error": {"code":
                # "Unauthorized", "description": "Invalid Crumb"}}} as well.
                kind, detail = self._not_a_chart()
            if kind == "unknown_symbol":
                self.forget(symbol)
            raise YahooFetchError(symbol, kind, detail) from error
        return self._to_ticks(symbol, frame, meta)

    def _request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self.on_request()
        # yfinance's own timeouts (30 s for the cookie and consent steps) would outlast ours.
        kwargs["timeout"] = self.timeout_s
        self._last_response = self._send(method, url, *args, **kwargs)
        return self._last_response

    def _not_a_chart(self) -> tuple[str, str]:
        status = int(getattr(self._last_response, "status_code", 0) or 0)
        body = getattr(self._last_response, "text", "")[:200]
        return status_kind(status), f"no chart in the answer: HTTP {status}: {body}"

    def _to_ticks(self, symbol: str, frame: Any, meta: dict[str, Any]) -> list[MarketTick]:
        currency = meta.get("currency") or None
        venue = meta.get("exchangeName") or None
        exchange = YAHOO_VENUES.get(venue, venue) if venue else None
        produced_at = self._wall_clock()
        ticks = []
        try:
            for moment, close, volume in zip(
                frame.index, frame["Close"], frame["Volume"], strict=True
            ):
                ticks.append(
                    MarketTick(
                        symbol=symbol,
                        timestamp=moment.to_pydatetime().astimezone(UTC),
                        price=None if close is None or math.isnan(close) else float(close),
                        volume=None if volume is None or volume != volume else int(volume),
                        currency=currency,
                        exchange=exchange,
                        source="yahoo",
                        produced_at=produced_at,
                    )
                )
        except (KeyError, ValueError, TypeError) as error:
            raise YahooFetchError(symbol, "bad_response", f"unexpected bars: {error}") from error
        return ticks
