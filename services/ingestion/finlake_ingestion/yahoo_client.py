"""Yahoo Finance bars through yfinance's own request and parsing code, errors sorted by kind."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import yfinance as yf
from curl_cffi.const import CurlECode  # yfinance's HTTP client, hence always installed
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

# How far back Yahoo serves each bar size (1m: 7 days, older intraday: 60 days; see yfinance #356,
# #1389, #636). The limits have moved before (#2706), hence the margin.
HISTORY_LIMITS = {
    "1m": timedelta(days=7),
    "2m": timedelta(days=60),
    "5m": timedelta(days=60),
    "15m": timedelta(days=60),
    "60m": timedelta(days=730),
}
HISTORY_MARGIN = timedelta(minutes=5)
BAR_SIZES = {name: timedelta(minutes=int(name[:-1])) for name in HISTORY_LIMITS}
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
# Failure kinds that say Yahoo (or the way to it) is unwell: they feed the circuit breaker.
UNHEALTHY = frozenset({"rate_limited", "timeout", "network", "bad_response", "server_error"})
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
        if status == 404:
            return "unknown_symbol"
        return "server_error" if status >= 500 else "http_error"
    if names & {"ConnectionError", "ChunkedEncodingError", "RemoteDisconnected"}:
        return "network"
    if isinstance(error, YFDataException | ValueError | KeyError | TypeError | IndexError):
        # Empty bodies, HTML error pages, "Will be right back", malformed JSON.
        return "bad_response"
    return "other"


class YahooClient:
    """One yfinance ``Ticker`` per symbol; ``fetch`` returns the bars since ``start`` as ticks."""

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
        # None keeps yfinance's default session (curl_cffi impersonating a browser, which Yahoo
        # requires); tests pass a requests.Session whose HTTP layer they serve locally.
        self._session = session
        self._wall_clock = wall_clock
        self._tickers: dict[str, yf.Ticker] = {}
        # Errors must reach us as exceptions: by default yfinance logs them and returns nothing.
        yf.config.debug.hide_exceptions = False
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            yf.set_tz_cache_location(str(cache_dir))

    def is_new(self, symbol: str) -> bool:
        """Whether the next fetch of ``symbol`` first probes its time zone (one more request)."""
        return symbol not in self._tickers

    def forget(self, symbol: str) -> None:
        """Drop the cached ``Ticker`` (its time zone lookup is redone next time)."""
        self._tickers.pop(symbol, None)

    @staticmethod
    def start_cycle() -> None:
        """Drop yfinance's in-process response cache, which would replay a bad answer forever."""
        YfData.cache_get.cache_clear()

    def fetch(self, symbol: str, start: datetime) -> list[MarketTick]:
        """Bars from ``start`` (inclusive) to now; raises YahooFetchError, never anything else."""
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
                    interval=self.interval,
                    prepost=self.prepost,
                    auto_adjust=False,
                    actions=False,
                    timeout=self.timeout_s,
                )
                meta: dict[str, Any] = {
                    key: ticker.history_metadata.get(key) for key in ("currency", "exchangeName")
                }
        except Exception as error:  # yfinance raises many unrelated types; all are sorted here
            kind = classify(error)
            if kind is None:
                return []
            if kind == "unknown_symbol":
                self.forget(symbol)
            raise YahooFetchError(symbol, kind, f"{type(error).__name__}: {error}") from error
        return self._to_ticks(symbol, frame, meta)

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
