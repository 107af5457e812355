"""An independent model of the market pipeline's semantics, in plain Python (no Spark, no SQL)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from finlake.contracts.models import MarketTick

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")


@dataclass(frozen=True)
class Bar:
    """One expected OHLCV bar."""

    symbol: str
    window_start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trade_count: int
    vwap: Decimal | None


def rule_of(tick: MarketTick) -> str | None:
    """The first design rule a tick fails, or None."""
    if not tick.symbol.strip():
        return "symbol_present"
    if tick.price is None:
        return "price_not_null"
    if tick.volume is None:
        return "volume_not_null"
    cents = Decimal(repr(tick.price)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    if cents <= 0:
        return "price_positive"
    if cents >= 100_000_000:
        return "price_fits_decimal"
    if tick.volume < 0:
        return "volume_non_negative"
    if tick.volume > 10**12:
        return "volume_plausible"
    if tick.timestamp > datetime.now(UTC) + timedelta(days=1):
        return "timestamp_not_future"
    return None


def silver(published: list[MarketTick], late: set[int]) -> dict[tuple[str, datetime], MarketTick]:
    """First-published tick per (symbol, timestamp) among valid, on-time ticks."""
    kept: dict[tuple[str, datetime], MarketTick] = {}
    for index, tick in enumerate(published):
        if index in late or rule_of(tick) is not None:
            continue
        kept.setdefault((tick.symbol, tick.timestamp), tick)
    return kept


def bars(ticks: list[MarketTick], width: timedelta) -> dict[tuple[str, datetime], Bar]:
    """OHLCV bars by hand: open/close by event time, vwap rounded half-up to 6 places."""
    groups: dict[tuple[str, datetime], list[MarketTick]] = defaultdict(list)
    for tick in ticks:
        epoch = tick.timestamp.timestamp()
        start = datetime.fromtimestamp(
            epoch - epoch % width.total_seconds(), tz=tick.timestamp.tzinfo
        )
        groups[(tick.symbol, start)].append(tick)
    result = {}
    for (symbol, start), members in groups.items():
        members.sort(key=lambda t: t.timestamp)
        prices = [Decimal(repr(t.price)).quantize(CENT, ROUND_HALF_UP) for t in members]
        volumes = [int(t.volume or 0) for t in members]
        volume = sum(volumes)
        notional = sum((p * v for p, v in zip(prices, volumes, strict=True)), Decimal(0))
        result[(symbol, start)] = Bar(
            symbol=symbol,
            window_start=start,
            open=prices[0],
            high=max(prices),
            low=min(prices),
            close=prices[-1],
            volume=volume,
            trade_count=len(members),
            vwap=(notional / volume).quantize(MICRO, ROUND_HALF_UP) if volume else None,
        )
    return result
