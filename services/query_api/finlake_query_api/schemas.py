"""Response models of the /v1 API (read-only: there are no request bodies yet)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from finlake_query_api.bars import Interval

T0 = "2026-11-26T14:30:00Z"
T1 = "2026-11-26T14:31:00Z"


class Public(BaseModel):
    """Base of every response model: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Problem(Public):
    """An RFC 9457 problem detail (served as application/problem+json)."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        json_schema_extra={
            "examples": [
                {"type": "about:blank", "title": "Not Found", "status": 404,
                 "detail": "no data for symbol 'ZZZZ'", "instance": "/v1/symbols/ZZZZ/ohlc"}
            ]
        },
    )  # fmt: skip

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class SymbolPublic(Public):
    """A symbol with data in the lake."""

    symbol: str = Field(examples=["AAPL"])
    first_tick: datetime | None = Field(description="Event time of its first tick in silver.")
    last_tick: datetime | None = Field(description="Event time of its latest tick in silver.")


class SymbolList(Public):
    """Every symbol with data."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [{"symbols": [{"symbol": "AAPL", "first_tick": T0, "last_tick": T1}]}]
        },
    )
    symbols: list[SymbolPublic]


BAR_EXAMPLE = {
    "window_start": T0, "window_end": T1, "open": "231.40", "high": "231.62",
    "low": "231.35", "close": "231.47", "volume": 18250, "trade_count": 12, "vwap": "231.481200",
}  # fmt: skip


class BarPublic(Public):
    """One OHLCV bar; prices are exact decimals, serialized as strings."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [BAR_EXAMPLE]}
    )

    window_start: datetime = Field(description="Start of the window, UTC, inclusive.")
    window_end: datetime = Field(description="End of the window, UTC, exclusive.")
    open: Decimal = Field(description="Price of the earliest tick in the window.")
    high: Decimal
    low: Decimal
    close: Decimal = Field(description="Price of the latest tick in the window.")
    volume: int = Field(ge=0)
    trade_count: int = Field(ge=0)
    vwap: Decimal | None = Field(description="Volume-weighted average price.")


class OhlcPage(Public):
    """A page of bars for one symbol, oldest first."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {"symbol": "AAPL", "interval": "1m", "start": T0, "end": T1, "source": "hot",
                 "next_cursor": None, "bars": [BAR_EXAMPLE]}
            ]
        },
    )  # fmt: skip
    symbol: str
    interval: Interval
    start: datetime
    end: datetime
    source: str = Field(description="`hot` (served from memory) or `lake`.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
    bars: list[BarPublic]


class QuotePublic(Public):
    """The latest price of a symbol: the close of its latest 1-minute bar."""

    symbol: str = Field(examples=["AAPL"])
    price: Decimal = Field(examples=["231.47"])
    as_of: datetime = Field(
        description="How recent the price is: the end of its bar, or for the bar still filling "
        "when the pipeline last updated it; never after now."
    )
    volume: int = Field(ge=0, description="Volume of that bar.")


class QuoteList(Public):
    """Latest quote per symbol."""

    quotes: list[QuotePublic]


class MarketMetrics(Public):
    """VWAP, returns and realized volatility of a symbol over a window."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {"symbol": "AAPL", "interval": "1m", "start": T0, "end": T1, "bar_count": 390,
                 "open": "229.10", "close": "231.47", "high": "232.00", "low": "228.75",
                 "volume": 51234567, "vwap": "230.512345", "simple_return": 0.010345,
                 "log_return": 0.010292, "realized_volatility": 0.0123}
            ]
        },
    )  # fmt: skip
    symbol: str
    interval: Interval
    start: datetime
    end: datetime
    bar_count: int
    open: Decimal | None
    close: Decimal | None
    high: Decimal | None
    low: Decimal | None
    volume: int
    vwap: Decimal | None
    simple_return: float | None = Field(description="close / open - 1 over the window.")
    log_return: float | None = Field(description="ln(close / open) over the window.")
    realized_volatility: float | None = Field(
        description="Square root of the summed squared log returns of consecutive closes; null "
        "with fewer than two closes (no return)."
    )


class LayerPublic(Public):
    """Row count and freshness of one layer."""

    layer: str = Field(examples=["silver"])
    table: str = Field(examples=["market.cleaned"])
    is_available: bool = Field(description="False until the pipeline created the table.")
    row_count: int
    max_event_time: datetime | None = Field(
        description="Latest event time not after now; for gold, the end of the latest bar, or "
        "for a bar still filling when the pipeline last updated it."
    )
    lag_seconds: float | None = Field(description="Now minus the latest event time.")


class QualityPublic(Public):
    """Data quality and freshness of the market flow, per layer."""

    generated_at: datetime
    layers: list[LayerPublic]
    quarantine_by_rule: dict[str, int] = Field(examples=[{"price_positive": 3}])
    quarantined_rows: int
    duplicate_rows: int
    last_run: dict[str, Any] | None = Field(description="The latest micro-batch's counts.")


class Status(Public):
    """Liveness or readiness."""

    status: str = Field(examples=["ok"])
