"""Each condition type evaluated at one tick, on the symbol's state (semantics in evaluator.py)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from finlake.contracts.alert_conditions import (
    MIN_HISTORY,
    Baseline,
    Condition,
    ConditionType,
    Direction,
)
from finlake.contracts.resources import format_duration
from finlake_spark.alerts.state import DAY_MS, RuleState, SymbolState, Tick


@dataclass(frozen=True)
class Observation:
    """Whether the condition holds at a tick, the value that decided it, and a sentence."""

    holds: bool
    value: float = 0.0
    message: str = ""


NOT_HOLDING = Observation(False)


def millis(value: timedelta | None) -> int:
    """A duration in whole milliseconds (0 for None)."""
    return 0 if value is None else round(value.total_seconds() * 1000)


def when(ms: int) -> str:
    """An event time as ``2026-11-25 10:02:05 UTC``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def bucket_start(ms: int, width_ms: int) -> int:
    """Start of the epoch-aligned bucket of ``width_ms`` holding ``ms``."""
    return ms - ms % width_ms


def _moved(percent: float, threshold: float, direction: Direction) -> bool:
    if direction is Direction.UP:
        return percent >= threshold
    if direction is Direction.DOWN:
        return percent <= -threshold
    return abs(percent) >= threshold


def observe(
    symbol: str,
    condition: Condition,
    state: SymbolState,
    rule: RuleState,
    tick: Tick,
    prev_price: float | None,
) -> Observation:
    """The condition at ``tick``; ``state`` already includes the tick, ``prev_price`` not."""
    kind = condition.type
    if kind is ConditionType.PRICE_CROSS:
        return _price_cross(symbol, condition, rule, tick, prev_price)
    if kind is ConditionType.PERCENT_MOVE:
        return _percent_move(symbol, condition, state, tick)
    if kind is ConditionType.RETURN_ZSCORE:
        return _return_zscore(symbol, condition, state, tick)
    if kind is ConditionType.VOLUME_SURGE:
        return _volume_surge(symbol, condition, state, tick)
    return _gap(symbol, condition, state, rule, tick)


def _price_cross(
    symbol: str, condition: Condition, rule: RuleState, tick: Tick, prev_price: float | None
) -> Observation:
    level = condition.threshold
    above = condition.direction is Direction.ABOVE
    beyond = tick.price >= level if above else tick.price <= level
    if not beyond:
        return NOT_HOLDING
    # A cross needs the previous price on the other side; then it holds while the price stays.
    crossed_now = prev_price is not None and (prev_price < level if above else prev_price > level)
    if rule.since_ms is None and not crossed_now:
        return NOT_HOLDING
    side = "above" if above else "below"
    return Observation(
        True,
        tick.price,
        f"{symbol} crossed {side} {level:,.2f}: {tick.price:,.2f} at {when(tick.timestamp_ms)}",
    )


def _percent_move(symbol: str, condition: Condition, state: SymbolState, tick: Tick) -> Observation:
    window = millis(condition.window)
    first = next(
        (price for ms, price in state.ticks if ms >= tick.timestamp_ms - window), tick.price
    )
    percent = (tick.price / first - 1) * 100
    if not _moved(percent, condition.threshold, condition.effective_direction):
        return NOT_HOLDING
    return Observation(
        True,
        percent,
        f"{symbol} moved {percent:+.2f}% in {format_duration(condition.window or timedelta())} "
        f"({first:,.2f} to {tick.price:,.2f}) at {when(tick.timestamp_ms)}",
    )


def _return_zscore(
    symbol: str, condition: Condition, state: SymbolState, tick: Tick
) -> Observation:
    width, lookback = millis(condition.window), millis(condition.lookback)
    start = bucket_start(tick.timestamp_ms, width)
    buckets = state.buckets.get(width, {})
    current = buckets[start].return_
    history = [
        r
        for begin, bucket in buckets.items()
        if start - lookback <= begin < start and (r := bucket.return_) is not None
    ]
    if current is None or len(history) < MIN_HISTORY:
        return NOT_HOLDING
    spread = statistics.stdev(history)
    if spread == 0:
        return NOT_HOLDING
    z = (current - statistics.fmean(history)) / spread
    if abs(z) <= condition.threshold:
        return NOT_HOLDING
    window = format_duration(condition.window or timedelta())
    return Observation(
        True,
        z,
        f"{symbol}'s {window} return of {current * 100:+.2f}% is {z:+.1f} standard deviations "
        f"from the mean of the previous {format_duration(condition.lookback or timedelta())} "
        f"(at {when(tick.timestamp_ms)})",
    )


def _volume_surge(symbol: str, condition: Condition, state: SymbolState, tick: Tick) -> Observation:
    width, lookback = millis(condition.window), millis(condition.lookback)
    start = bucket_start(tick.timestamp_ms, width)
    buckets = state.buckets.get(width, {})
    volume = buckets[start].volume
    if condition.baseline is Baseline.TIME_OF_DAY:
        days = range(1, lookback // DAY_MS + 1)
        history = [b.volume for n in days if (b := buckets.get(start - n * DAY_MS)) is not None]
        windows = len(history)  # a day without that bucket: closed then, not a quiet day
        enough = windows >= 1
        baseline = "same time of day"
    else:
        # Every window of the lookback counts, a window without trades as 0; the lookback starts
        # no earlier than the first window the state has (the symbol's first tick it saw).
        since = max(start - lookback, min(buckets))
        history = [b.volume for begin, b in buckets.items() if since <= begin < start]
        windows = (start - since) // width
        enough = windows >= MIN_HISTORY
        baseline = "rolling"
    if not enough or sum(history) <= 0:
        return NOT_HOLDING
    average = sum(history) / windows
    ratio = volume / average
    if ratio < condition.threshold:
        return NOT_HOLDING
    return Observation(
        True,
        ratio,
        f"{symbol} traded {volume:,} in {format_duration(condition.window or timedelta())}, "
        f"{ratio:.1f}x the {baseline} average of {average:,.0f} over "
        f"{format_duration(condition.lookback or timedelta())} (at {when(tick.timestamp_ms)})",
    )


def _gap(
    symbol: str, condition: Condition, state: SymbolState, rule: RuleState, tick: Tick
) -> Observation:
    day = state.day
    if day is None or day.prev_close is None or rule.gap_closed_day == day.day:
        return NOT_HOLDING
    direction = condition.effective_direction
    opening = (day.open / day.prev_close - 1) * 100
    now = (tick.price / day.prev_close - 1) * 100
    # The gap holds from the open until the price comes back inside the threshold that day.
    side = Direction.UP if opening > 0 else Direction.DOWN
    if direction is not Direction.EITHER and direction is not side:
        return NOT_HOLDING
    if not (_moved(opening, condition.threshold, side) and _moved(now, condition.threshold, side)):
        rule.gap_closed_day = day.day
        return NOT_HOLDING
    date = datetime.fromtimestamp(day.day * DAY_MS / 1000, UTC).date().isoformat()
    return Observation(
        True,
        opening,
        f"{symbol} opened {date} {'up' if opening > 0 else 'down'} {abs(opening):.2f}% "
        f"from the previous close {day.prev_close:,.2f} (open {day.open:,.2f})",
    )
