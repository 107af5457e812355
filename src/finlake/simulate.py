"""Seeded random-walk market ticks: the demo's source, as Yahoo is not reachable everywhere."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from finlake.contracts.models import MarketTick

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL")


def random_walk_ticks(
    symbols: Sequence[str],
    *,
    count: int,
    seed: int,
    start: datetime,
    interval: timedelta = timedelta(seconds=1),
    volatility: float = 0.0005,
) -> Iterator[MarketTick]:
    """``count`` ticks per symbol, one per ``interval``; geometric random-walk prices (2 dp)."""
    rng = random.Random(seed)
    prices = {symbol: rng.uniform(50, 500) for symbol in symbols}
    for step in range(count):
        moment = start + step * interval
        for symbol in symbols:
            prices[symbol] *= math.exp(rng.gauss(0.0, volatility))
            yield MarketTick(
                symbol=symbol,
                timestamp=moment,
                price=round(prices[symbol], 2),
                volume=rng.randint(1, 50) * 100,
                currency="USD",
                exchange="XNAS",
                source="simulate",
                produced_at=datetime.now(UTC),
            )
