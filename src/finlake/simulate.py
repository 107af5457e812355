"""Seeded random-walk market ticks: the demo's source, as Yahoo is not reachable everywhere."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from finlake.contracts.alert_conditions import ConditionType
from finlake.contracts.models import MarketTick
from finlake.contracts.resources import parse_duration
from finlake.errors import ConfigurationError

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL")


_INJECTION = re.compile(
    r"^(?P<kind>[a-z_]+):(?P<symbol>[A-Za-z0-9.^=_-]{1,20})@(?P<at>[0-9a-z]+)"
    r"(?::(?P<amount>[^/]+))?(?:/(?P<duration>[0-9a-z]+))?$"
)
_DEFAULT_PERCENT = {
    ConditionType.PERCENT_MOVE: 5.0,
    ConditionType.RETURN_ZSCORE: 3.0,
    ConditionType.GAP: 4.0,
}


@dataclass(frozen=True)
class Injection:
    """A pattern forced into the simulated ticks so that a rule of ``kind`` fires (``--inject``).

    ``at`` is event time after the first tick. price_cross moves the price 1 % beyond ``amount``
    (a level; default: the next multiple of 10 above); percent_move and return_zscore step the
    price by ``amount`` percent; gap steps it at the first tick of the next UTC day at or after
    ``at``; volume_surge multiplies volumes by ``amount`` for ``duration``.
    """

    kind: ConditionType
    symbol: str
    at: timedelta
    amount: float | None = None
    duration: timedelta = timedelta(minutes=1)


def parse_injection(text: str) -> Injection:
    """``KIND:SYMBOL@AT[:AMOUNT][/DURATION]``, e.g. ``percent_move:AAPL@10m:+5%``."""
    match = _INJECTION.fullmatch(text.strip())
    if match is None:
        raise ConfigurationError(
            f"--inject {text!r} is not KIND:SYMBOL@AT[:AMOUNT][/DURATION], "
            "e.g. price_cross:AAPL@2m:150 or volume_surge:MSFT@5m:x10/2m"
        )
    try:
        kind = ConditionType(match["kind"])
        at = parse_duration(match["at"])
        duration = parse_duration(match["duration"] or "1m")
        raw = match["amount"]
        amount = None if raw is None else float(raw.strip().lstrip("x").rstrip("%"))
    except ValueError as error:
        raise ConfigurationError(f"--inject {text!r}: {error}") from None
    return Injection(kind, match["symbol"].upper(), at, amount, duration)


def _inject(
    injection: Injection, price: float, volume: int, offset: timedelta, new_day: bool, done: bool
) -> tuple[float, int, bool]:
    """(price, volume, applied) at one tick of the injection's symbol."""
    kind = injection.kind
    if kind is ConditionType.VOLUME_SURGE:
        inside = injection.at <= offset < injection.at + injection.duration
        factor = injection.amount or 10.0
        return price, round(volume * factor) if inside else volume, False
    if done or offset < injection.at or (kind is ConditionType.GAP and not new_day):
        return price, volume, False
    if kind is ConditionType.PRICE_CROSS:
        level = injection.amount or (math.floor(price / 10) + 1) * 10
        return (level * 1.01 if price < level else level * 0.99), volume, True
    percent = _DEFAULT_PERCENT[kind] if injection.amount is None else injection.amount
    return price * (1 + percent / 100), volume, True


def random_walk_ticks(
    symbols: Sequence[str],
    *,
    count: int,
    seed: int,
    start: datetime,
    interval: timedelta = timedelta(seconds=1),
    volatility: float = 0.0005,
    injections: Sequence[Injection] = (),
) -> Iterator[MarketTick]:
    """``count`` ticks per symbol, one per ``interval``; geometric random-walk prices (2 dp).

    ``injections`` change only their symbol's ticks; the random draws stay the same.
    """
    rng = random.Random(seed)
    prices = {symbol: rng.uniform(50, 500) for symbol in symbols}
    applied: set[int] = set()
    for step in range(count):
        moment = start + step * interval
        new_day = step > 0 and (moment - interval).date() != moment.date()
        for symbol in symbols:
            prices[symbol] *= math.exp(rng.gauss(0.0, volatility))
            volume = rng.randint(1, 50) * 100
            for index, injection in enumerate(injections):
                if injection.symbol != symbol:
                    continue
                prices[symbol], volume, done = _inject(
                    injection, prices[symbol], volume, step * interval, new_day, index in applied
                )
                if done:
                    applied.add(index)
            yield MarketTick(
                symbol=symbol,
                timestamp=moment,
                price=round(prices[symbol], 2),
                volume=volume,
                currency="USD",
                exchange="XNAS",
                source="simulate",
                produced_at=datetime.now(UTC),
            )
