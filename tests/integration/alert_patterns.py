"""The replayed market of the alert detection tests: five symbols, ten-second ticks across
midnight UTC, each with a known pattern, the rules that watch them and the events they must fire."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from finlake.contracts.models import MarketTick

START = datetime(2026, 11, 25, 23, 40, tzinfo=UTC)  # crosses midnight UTC: a gap
STEP = timedelta(seconds=10)
STEPS = 240  # 23:40 -> 00:20
MORE = 30  # 00:20 -> 00:25 (second run)
SOURCE, ALERTS = "alert-ticks", "alert-events"

RULES = """\
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {name: aaa-cross}
spec:
  symbols: [AAA]
  condition: {type: price_cross, level: 105, direction: above}
  severity: critical
  labels: {team: desk-a}
  channels: [{type: dashboard}, {type: slack}]
---
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {name: aaa-cross-held}
spec:
  symbols: [AAA]
  condition: {type: price_cross, level: 105, direction: above}
  for: 30s
---
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {name: bbb-move-once}
spec:
  symbols: [BBB]
  condition: {type: percent_move, percent: 3, window: 5m, direction: up}
  fire: once
---
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {name: bbb-move-close}
spec:
  symbols: [BBB]
  condition: {type: percent_move, percent: 3, window: 5m}
  fire: once_per_bar_close
---
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {name: ccc-zscore}
spec:
  symbols: [CCC]
  condition: {type: return_zscore, k: 4, window: 1m, lookback: 30m}
---
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {name: ddd-volume}
spec:
  symbols: [DDD]
  condition: {type: volume_surge, ratio: 5, window: 1m, lookback: 10m}
---
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {name: e-gap}
spec:
  selector: {pattern: "E.*"}
  condition: {type: gap, percent: 2}
  severity: info
"""
ADDED_RULE = """\
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {name: aaa-drop}
spec:
  symbols: [AAA]
  condition: {type: price_cross, level: 104, direction: below}
"""


def at(step: int) -> datetime:
    return START + step * STEP


def step_of(hour: int, minute: int, second: int = 0) -> int:
    moment = START.replace(hour=hour, minute=minute, second=second)
    if hour == 0:
        moment += timedelta(days=1)
    return int((moment - START) / STEP)


CROSS_UP, MOVE_UP = step_of(23, 45), step_of(23, 50)
GAP, JUMP, SURGE, DROP = step_of(0, 0), step_of(0, 5), step_of(0, 10), step_of(0, 21)


def price(symbol: str, step: int) -> float:
    wiggle = 0.01 * (step % 2)
    if symbol == "AAA":
        return (103.0 if step >= DROP else 106.0 if step >= CROSS_UP else 100.0) + wiggle
    if symbol == "BBB":
        return (104.0 if step >= MOVE_UP else 100.0) + wiggle
    if symbol == "CCC":  # 1-minute returns of a few 0.1 %, then one jump of 3 %
        level = 100.0 * (1 + 0.002 * ((step // 6) % 3))
        return round(level * (1.03 if step >= JUMP else 1.0), 4)
    return (103.0 if step >= GAP else 100.0) + wiggle  # DDD, EEE (EEE gaps at midnight)


def volume(symbol: str, step: int) -> int:
    return 1000 if symbol == "DDD" and SURGE <= step < SURGE + 6 else 100


def ticks(first: int, last: int) -> list[MarketTick]:
    return [
        MarketTick(
            symbol=symbol,
            timestamp=at(step),
            price=price(symbol, step),
            volume=volume(symbol, step),
            source="replay",
            produced_at=at(step),
        )
        for step in range(first, last)
        for symbol in ("AAA", "BBB", "CCC", "DDD", "EEE")
    ]


def unusable_ticks() -> list[MarketTick]:
    """Ticks the detector must not evaluate: one stamped decades after it was produced (it would
    move the watermark past every later tick, and the next run's cross would be dropped as late)
    and prices that are no number (kept in the symbol's state, they would fail its next batch)."""
    base = {"volume": 1, "source": "replay", "produced_at": at(12)}
    return [
        MarketTick(symbol="AAA", timestamp=datetime(2099, 1, 1, tzinfo=UTC), price=100, **base),
        MarketTick(symbol="BBB", timestamp=at(12), price=float("nan"), **base),
        MarketTick(symbol="CCC", timestamp=at(12), price=float("inf"), **base),
    ]


@dataclass(frozen=True)
class Expected:
    rule: str
    symbol: str
    bar: datetime
    value: float


def expected_first_run() -> list[Expected]:
    held = CROSS_UP + 3  # 30 s after the cross
    move = (price("BBB", MOVE_UP) / price("BBB", MOVE_UP - 30) - 1) * 100
    closes = [Expected("bbb-move-close", "BBB", at(MOVE_UP) + timedelta(minutes=m), 0) for m in
              range(5)]  # fmt: skip
    return [
        Expected("aaa-cross", "AAA", at(CROSS_UP), price("AAA", CROSS_UP)),
        Expected("aaa-cross-held", "AAA", at(held).replace(second=0), price("AAA", held)),
        Expected("bbb-move-once", "BBB", at(MOVE_UP), move),
        *closes,
        Expected("ccc-zscore", "CCC", at(JUMP), ccc_zscore()),
        Expected("ddd-volume", "DDD", at(SURGE), 0),
        Expected("e-gap", "EEE", at(GAP), (price("EEE", GAP) / price("EEE", GAP - 1) - 1) * 100),
    ]


def ccc_zscore() -> float:
    """By hand: the jump minute's close-to-close return against the minutes before it."""
    closes = [price("CCC", minute * 6 + 5) for minute in range(JUMP // 6)]
    history = [b / a - 1 for a, b in itertools.pairwise(closes)][-30:]
    jump = price("CCC", JUMP) / closes[-1] - 1
    return (jump - statistics.fmean(history)) / statistics.stdev(history)
