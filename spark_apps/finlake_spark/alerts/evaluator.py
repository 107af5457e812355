"""Per-symbol rule evaluation on event time: pure Python, called once per micro-batch and symbol.

Semantics (the AlertRule docstring defines the conditions):

- Ticks of a symbol are evaluated in event-time order. A tick at or before the last evaluated
  one (a duplicate, a replayed tick or one that arrived out of order) is not evaluated again:
  it is counted as skipped (the lake still has it: detection never rewrites the past).
- An *episode* is a run of ticks at which the condition holds. ``for`` asks the episode to
  have lasted that long (tick time minus the episode's first tick) before it may fire.
- price_cross and gap are edge-triggered: an episode fires at most once (a cross is one event,
  a gap one per day). percent_move, return_zscore and volume_surge are level-triggered: they
  may fire again while they keep holding, as often as the fire mode allows.
- Fire modes: ``once`` fires the first time only (per rule and symbol, for as long as the rule
  exists); ``once_per_bar`` fires at the first tick of a bar at which the rule may fire;
  ``once_per_bar_close`` looks at the bar's last tick, when the bar closes (a later tick of
  the symbol arrives, or the watermark passes the bar's end).
- Bars (``bar``) and condition buckets (``window``) are aligned to the Unix epoch, days are UTC.
- An event's window is the bar it fired in; its id is a UUIDv5 of (rule, rule version,
  symbol, window), and of (rule, rule version, symbol) for ``once``: replaying the same ticks
  yields the same ids. The version is the rule's fingerprint: an edit of what it evaluates
  starts it afresh (a ``once`` rule may fire again), under new ids, which no dedupe downstream
  mistakes for the old version's firings.
- A symbol idle for longer than any rule looks back is forgotten (``horizon_ms``): price_cross
  and gap rules remember its last price for ``LAST_PRICE_MEMORY_MS`` (a cross or gap across a
  long weekend still counts), and a ``once`` rule that fired keeps that fact while it exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from finlake.contracts.alert_conditions import ConditionType
from finlake.contracts.alert_rule import FireMode
from finlake_spark.alerts.conditions import Observation, bucket_start, millis, observe
from finlake_spark.alerts.rules import ActiveRule
from finlake_spark.alerts.state import (
    DAY_MS,
    Bucket,
    Day,
    Firing,
    RuleState,
    SymbolState,
    Tick,
)

EVENT_NAMESPACE = uuid.UUID("6f1d3c52-7a39-4c1e-9a57-2f0c1d5e8b11")
EDGE_TRIGGERED = frozenset({ConditionType.PRICE_CROSS, ConditionType.GAP})
BUCKETED = frozenset({ConditionType.RETURN_ZSCORE, ConditionType.VOLUME_SURGE})
LAST_PRICE_MEMORY_MS = 4 * DAY_MS
"""How long an idle symbol keeps its last price for price_cross and gap rules (a long weekend)."""


def event_id(
    rule: str, version: str, symbol: str, window_start_ms: int, window_end_ms: int, once: bool
) -> str:
    """The deterministic id of a firing (``version``: the rule's fingerprint)."""
    window = "once" if once else f"{window_start_ms}|{window_end_ms}"
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{rule}|{version}|{symbol}|{window}"))


class SymbolEvaluator:
    """Evaluates the rules of one symbol on its state; collects the firings."""

    def __init__(self, symbol: str, state: SymbolState, rules: Sequence[ActiveRule]) -> None:
        self.symbol = symbol
        self.state = state
        self.rules = list(rules)
        self.firings: list[Firing] = []
        self.skipped = 0
        for rule in self.rules:
            current = state.rules.get(rule.name)
            if current is None or current.fingerprint != rule.fingerprint:
                state.rules[rule.name] = RuleState(fingerprint=rule.fingerprint)
        for name in set(state.rules) - {rule.name for rule in self.rules}:
            del state.rules[name]

    def process(self, ticks: Iterable[Tick], now_ms: int) -> list[Firing]:
        """Evaluate ``ticks`` (any order) and return what fired."""
        for tick in sorted(ticks, key=lambda t: t.timestamp_ms):
            last = self.state.last_ms
            if last is not None and tick.timestamp_ms <= last:
                self.skipped += 1
                continue
            self._tick(tick, now_ms)
        self._trim()
        return self.firings

    def close_bars(self, watermark_ms: int, now_ms: int) -> list[Firing]:
        """Close the pending bars that end at or before the watermark."""
        for rule in self.rules:
            if rule.spec.fire is not FireMode.ONCE_PER_BAR_CLOSE:
                continue
            rs = self.state.rules[rule.name]
            if rs.close_bar_ms is not None:
                end = rs.close_bar_ms + millis(rule.spec.bar)
                if end <= watermark_ms:
                    self._close(rule, rs, now_ms)
        return self.firings

    def next_timer_ms(self) -> int | None:
        """When the watermark must wake this symbol: a pending bar close, or eviction."""
        if self.state.last_ms is None:
            return None
        moments = [self.state.last_ms + self.horizon_ms()]
        for rule in self.rules:
            rs = self.state.rules[rule.name]
            if rule.spec.fire is FireMode.ONCE_PER_BAR_CLOSE and rs.close_bar_ms is not None:
                moments.append(rs.close_bar_ms + millis(rule.spec.bar))
        return min(moments)

    def is_expired(self, watermark_ms: int) -> bool:
        """Whether the symbol has been idle for longer than any rule looks back."""
        last = self.state.last_ms
        return last is None or last + self.horizon_ms() <= watermark_ms

    def horizon_ms(self) -> int:
        """The longest stretch of event time any rule needs to remember."""
        spans = [0]
        for rule in self.rules:
            condition = rule.spec.condition
            spans.append(millis(condition.window) + millis(condition.lookback))
            spans.append(millis(rule.spec.for_) + millis(rule.spec.bar))
            if condition.type in EDGE_TRIGGERED:
                spans.append(LAST_PRICE_MEMORY_MS)
        return max(spans)

    def forget(self) -> bool:
        """Drop the state of an expired symbol; True when nothing is left to keep, else what is
        left (the ``once`` rules that fired) is in ``state``."""
        fired = {
            name: RuleState(fingerprint=rs.fingerprint, fired_once=True)
            for name, rs in self.state.rules.items()
            if rs.fired_once
        }
        self.state = SymbolState(rules=fired)
        return not fired

    def _tick(self, tick: Tick, now_ms: int) -> None:
        for rule in self.rules:
            rs = self.state.rules[rule.name]
            bar = bucket_start(tick.timestamp_ms, millis(rule.spec.bar))
            if rs.close_bar_ms is not None and bar > rs.close_bar_ms:
                self._close(rule, rs, now_ms)
        prev_price = self.state.last_price
        self._aggregate(tick, prev_price)
        for rule in self.rules:
            rs = self.state.rules[rule.name]
            observation = observe(
                self.symbol, rule.spec.condition, self.state, rs, tick, prev_price
            )
            self._step(rule, rs, observation, tick, now_ms)
        self.state.last_ms, self.state.last_price = tick.timestamp_ms, tick.price

    def _aggregate(self, tick: Tick, prev_price: float | None) -> None:
        state = self.state
        if any(r.spec.condition.type is ConditionType.PERCENT_MOVE for r in self.rules):
            state.ticks.append((tick.timestamp_ms, tick.price))
        for width in self._bucket_widths():
            start = bucket_start(tick.timestamp_ms, width)
            buckets = state.buckets.setdefault(width, {})
            bucket = buckets.get(start)
            if bucket is None:
                bucket = buckets[start] = Bucket(last=tick.price, prev_close=prev_price)
            bucket.volume += tick.volume
            bucket.last = tick.price
        day = tick.timestamp_ms // DAY_MS
        if state.day is None or day != state.day.day:
            known = state.last_ms is not None and state.last_ms // DAY_MS < day
            state.day = Day(day=day, open=tick.price, prev_close=prev_price if known else None)

    def _step(
        self, rule: ActiveRule, rs: RuleState, observation: Observation, tick: Tick, now_ms: int
    ) -> None:
        spec = rule.spec
        bar = bucket_start(tick.timestamp_ms, millis(spec.bar))
        if spec.fire is FireMode.ONCE_PER_BAR_CLOSE:
            if rs.closed_through_ms is not None and bar < rs.closed_through_ms:
                return  # the watermark closed this bar already
            rs.close_bar_ms = bar
            rs.close_candidate = None
        if not observation.holds:
            rs.since_ms, rs.episode_fired = None, False
            return
        if rs.since_ms is None:
            rs.since_ms = tick.timestamp_ms
        satisfied = tick.timestamp_ms - rs.since_ms >= millis(spec.for_)
        edge = spec.condition.type in EDGE_TRIGGERED
        if not satisfied or (edge and rs.episode_fired):
            return
        if spec.fire is FireMode.ONCE:
            if not rs.fired_once:
                self._fire(rule, observation, bar, now_ms)
                rs.fired_once = rs.episode_fired = True
        elif spec.fire is FireMode.ONCE_PER_BAR:
            if rs.last_fired_bar_ms != bar:
                self._fire(rule, observation, bar, now_ms)
                rs.last_fired_bar_ms, rs.episode_fired = bar, True
        else:
            rs.close_candidate = self._firing(rule, observation, bar, now_ms)

    def _close(self, rule: ActiveRule, rs: RuleState, now_ms: int) -> None:
        assert rs.close_bar_ms is not None
        if rs.close_candidate is not None:
            self.firings.append(rs.close_candidate.model_copy(update={"fired_at_ms": now_ms}))
            rs.episode_fired = True
            rs.last_fired_bar_ms = rs.close_bar_ms
        rs.closed_through_ms = rs.close_bar_ms + millis(rule.spec.bar)
        rs.close_bar_ms, rs.close_candidate = None, None

    def _fire(self, rule: ActiveRule, observation: Observation, bar: int, now_ms: int) -> None:
        self.firings.append(self._firing(rule, observation, bar, now_ms))

    def _firing(self, rule: ActiveRule, observation: Observation, bar: int, now_ms: int) -> Firing:
        spec = rule.spec
        end = bar + millis(spec.bar)
        return Firing(
            event_id=event_id(
                rule.name, rule.fingerprint, self.symbol, bar, end, spec.fire is FireMode.ONCE
            ),
            rule=rule.name,
            kind=spec.condition.type.value,
            symbol=self.symbol,
            severity=spec.severity.value,
            window_start_ms=bar,
            window_end_ms=end,
            fired_at_ms=now_ms,
            value=observation.value,
            threshold=spec.condition.threshold,
            message=observation.message,
            labels=dict(spec.labels),
        )

    def _bucket_widths(self) -> set[int]:
        return {
            millis(r.spec.condition.window) for r in self.rules if r.spec.condition.type in BUCKETED
        }

    def _trim(self) -> None:
        state = self.state
        if state.last_ms is None:
            return
        windows = [
            millis(r.spec.condition.window)
            for r in self.rules
            if r.spec.condition.type is ConditionType.PERCENT_MOVE
        ]
        keep_from = state.last_ms - max(windows, default=0)
        state.ticks = [t for t in state.ticks if t[0] >= keep_from] if windows else []
        widths = self._bucket_widths()
        for width in list(state.buckets):
            if width not in widths:
                del state.buckets[width]
                continue
            lookback = max(
                millis(r.spec.condition.lookback)
                for r in self.rules
                if r.spec.condition.type in BUCKETED and millis(r.spec.condition.window) == width
            )
            oldest = bucket_start(state.last_ms, width) - lookback
            state.buckets[width] = {
                start: b for start, b in state.buckets[width].items() if start >= oldest
            }
