"""Rule evaluation on tiny tick sequences: each condition, `for`, the fire modes, bounded state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from finlake.contracts.alert_rule import AlertRuleSpec
from finlake_spark.alerts.evaluator import SymbolEvaluator, event_id
from finlake_spark.alerts.rules import ActiveRule
from finlake_spark.alerts.state import DAY_MS, Firing, SymbolState, Tick

T0 = int(datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp() * 1000)
S = 1000  # one second in ms
M = 60 * S


def rule(name: str = "r", **spec: Any) -> ActiveRule:
    return ActiveRule.of(name, AlertRuleSpec.model_validate({"symbols": ["X"], **spec}))


def run(
    rules: list[ActiveRule], prices: list[tuple[int, float]], volume: int = 100
) -> list[Firing]:
    evaluator = SymbolEvaluator("X", SymbolState(), rules)
    return evaluator.process([Tick(T0 + ms, p, volume) for ms, p in prices], now_ms=1)


def in_batches(rules: list[ActiveRule], ticks: list[Tick], size: int) -> list[Firing]:
    """The same ticks split into micro-batches, the state round-tripping through JSON."""
    stored, fired = SymbolState().model_dump_json(), []
    for start in range(0, len(ticks), size):
        evaluator = SymbolEvaluator("X", SymbolState.model_validate_json(stored), rules)
        fired += evaluator.process(ticks[start : start + size], now_ms=1)
        stored = evaluator.state.model_dump_json()
    return fired


CROSS = {"condition": {"type": "price_cross", "level": 105, "direction": "above"}}


def test_price_cross_fires_on_the_crossing_tick_only() -> None:
    fired = run([rule(**CROSS)], [(0, 100), (10 * S, 106), (70 * S, 107), (130 * S, 108)])
    assert [(f.window_start_ms - T0, f.value) for f in fired] == [(0, 106)]
    assert fired[0].message == "X crossed above 105.00: 106.00 at 2026-03-02 09:00:10 UTC"


def test_a_price_already_above_the_level_is_no_cross() -> None:
    assert run([rule(**CROSS)], [(0, 106), (10 * S, 107)]) == []


def test_price_cross_below_and_a_new_episode_after_going_back() -> None:
    below = rule(condition={"type": "price_cross", "level": 100, "direction": "below"})
    fired = run([below], [(0, 101), (1 * M, 99), (2 * M, 101), (3 * M, 98)])
    assert [f.window_start_ms - T0 for f in fired] == [1 * M, 3 * M]


def test_for_needs_the_condition_to_hold_that_long() -> None:
    held = rule(**CROSS, **{"for": "30s"})
    broken = [(0, 100), (10 * S, 106), (20 * S, 104), (30 * S, 106), (50 * S, 106)]
    assert run([held], broken) == []
    fired = run([held], [*broken, (60 * S, 106)])
    assert [(f.window_start_ms - T0, f.message.split(" at ")[-1]) for f in fired] == [
        (1 * M, "2026-03-02 09:01:00 UTC")
    ]


MOVE = {"condition": {"type": "percent_move", "percent": 2, "window": "5m"}}
STEP_UP = [(m * M, 100.0) for m in range(3)] + [(m * M + 30 * S, 103.0) for m in range(2, 9)]


def test_percent_move_level_triggered_once_per_bar() -> None:
    fired = run([rule(**MOVE)], STEP_UP)
    # Holds while the 5-minute window still starts before the step: bars 2..6.
    assert [f.window_start_ms - T0 for f in fired] == [m * M for m in range(2, 7)]
    assert fired[0].value == pytest.approx(3.0)


def test_once_fires_once_and_keeps_the_same_id() -> None:
    fired = run([rule(**MOVE, fire="once")], STEP_UP)
    assert len(fired) == 1
    assert fired[0].event_id == event_id(
        "r", rule(**MOVE, fire="once").fingerprint, "X", 0, 0, True
    )


def test_an_edited_rule_fires_again_under_new_ids() -> None:
    state = SymbolState()
    [first] = SymbolEvaluator("X", state, [rule(**MOVE, fire="once")]).process(
        [Tick(T0 + ms, p, 1) for ms, p in STEP_UP[:4]], now_ms=1
    )
    edited = rule(**{**MOVE, "condition": {**MOVE["condition"], "percent": 2.5}}, fire="once")
    [again] = SymbolEvaluator("X", state, [edited]).process(
        [Tick(T0 + ms, p, 1) for ms, p in STEP_UP[4:]], now_ms=2
    )
    assert first.event_id != again.event_id  # the alert service delivers the new version's


def test_once_per_bar_close_looks_at_the_last_tick_of_each_bar() -> None:
    prices = [(0, 100), (10 * S, 103), (50 * S, 100.5), (70 * S, 103), (110 * S, 103), (2 * M, 103)]
    fired = run([rule(**MOVE, fire="once_per_bar_close")], prices)
    # Bar 0 closes at 100.5 (no move); bar 1 closes moved; bar 2 is still open.
    assert [f.window_start_ms - T0 for f in fired] == [1 * M]


def test_percent_move_down_only() -> None:
    down = {
        "condition": {"type": "percent_move", "percent": 2, "window": "5m", "direction": "down"}
    }
    assert run([rule(**down)], STEP_UP) == []
    fired = run([rule(**down)], [(0, 100), (1 * M, 97.5)])
    assert fired[0].value == pytest.approx(-2.5)


def test_return_zscore_fires_on_an_outlier_bucket() -> None:
    z = {"condition": {"type": "return_zscore", "k": 3, "window": "1m", "lookback": "10m"}}
    prices = [(m * M, 100 + 0.1 * (m % 2)) for m in range(8)] + [(8 * M, 104.0)]
    fired = run([rule(**z)], prices)
    assert [f.window_start_ms - T0 for f in fired] == [8 * M]
    assert fired[0].value > 3


def test_return_zscore_needs_history() -> None:
    z = {"condition": {"type": "return_zscore", "k": 3, "window": "1m", "lookback": "10m"}}
    assert run([rule(**z)], [(0, 100), (1 * M, 100.1), (2 * M, 100), (3 * M, 110)]) == []


def test_volume_surge_rolling_and_time_of_day() -> None:
    rolling = {"condition": {"type": "volume_surge", "ratio": 4, "window": "1m", "lookback": "5m"}}
    ticks = [Tick(T0 + m * M, 100, 100) for m in range(5)] + [Tick(T0 + 5 * M, 100, 500)]
    fired = in_batches([rule(**rolling)], ticks, 2)
    assert [(f.window_start_ms - T0, f.value) for f in fired] == [(5 * M, 5.0)]
    daily = {
        "condition": {
            "type": "volume_surge",
            "ratio": 3,
            "window": "1m",
            "lookback": "2d",
            "baseline": "time_of_day",
        }
    }
    ticks = [Tick(T0, 100, 100), Tick(T0 + DAY_MS, 100, 200), Tick(T0 + 2 * DAY_MS, 100, 450)]
    fired = in_batches([rule(**daily)], ticks, 1)
    assert [(f.window_start_ms - T0, f.value) for f in fired] == [(2 * DAY_MS, 3.0)]


def test_volume_surge_counts_windows_without_trades_as_zero() -> None:
    rolling = {"condition": {"type": "volume_surge", "ratio": 5, "window": "1m", "lookback": "10m"}}
    ticks = [Tick(T0 + m * M, 100, 100) for m in (0, 3, 6)] + [Tick(T0 + 10 * M, 100, 250)]
    [fired] = in_batches([rule(**rolling)], ticks, 1)
    # 300 over the 10 windows of the lookback: 30 a window, and 250 is 8.3 times that.
    assert fired.value == pytest.approx(250 / 30)
    assert "the rolling average of 30 over 10m" in fired.message


def test_gap_fires_once_on_the_first_tick_of_the_day() -> None:
    gap = rule(condition={"type": "gap", "percent": 2, "direction": "down"})
    midnight = 15 * 60 * M  # T0 is 09:00 UTC
    prices = [
        (0, 100),
        (midnight - 1, 100),
        (midnight, 97),
        (midnight + M, 96),
        (midnight + 2 * M, 97),
    ]
    fired = run([gap], prices)
    assert [(f.window_start_ms - T0 - midnight, round(f.value, 2)) for f in fired] == [(0, -3.0)]
    assert fired[0].message == (
        "X opened 2026-03-03 down 3.00% from the previous close 100.00 (open 97.00)"
    )
    up_only = rule(condition={"type": "gap", "percent": 2, "direction": "up"})
    assert run([up_only], prices) == []


def test_batches_and_replays_change_nothing() -> None:
    rules = [rule("a", **CROSS), rule("b", **MOVE), rule("c", **MOVE, fire="once_per_bar_close")]
    ticks = [Tick(T0 + ms, p, 100) for ms, p in [*STEP_UP, (9 * M, 106), (10 * M, 100)]]
    whole = in_batches(rules, ticks, len(ticks))
    assert in_batches(rules, ticks, 3) == whole
    assert in_batches(rules, ticks + ticks[:4], 5) == whole  # replayed ticks are skipped
    assert len({f.event_id for f in whole}) == len(whole)


def test_state_stays_bounded_by_the_rules() -> None:
    rules = [rule(**MOVE), rule("z", condition={"type": "return_zscore", "k": 3, "window": "1m",
                                                "lookback": "10m"})]  # fmt: skip
    evaluator = SymbolEvaluator("X", SymbolState(), rules)
    evaluator.process([Tick(T0 + s * S, 100 + s % 3, 1) for s in range(3 * 3600)], now_ms=1)
    assert len(evaluator.state.ticks) <= 5 * 60 + 1
    assert len(evaluator.state.buckets[M]) <= 11
    assert evaluator.horizon_ms() == 11 * M


def test_a_changed_rule_starts_afresh_and_a_removed_one_is_forgotten() -> None:
    state = SymbolState()
    SymbolEvaluator("X", state, [rule("a", **CROSS), rule("b", **MOVE)]).process(
        [Tick(T0, 100, 1), Tick(T0 + S, 106, 1)], now_ms=1
    )
    assert state.rules["a"].since_ms == T0 + S
    changed = rule("a", condition={"type": "price_cross", "level": 110, "direction": "above"})
    SymbolEvaluator("X", state, [changed])
    assert set(state.rules) == {"a"}
    assert state.rules["a"].since_ms is None


def test_the_watermark_closes_the_bar_of_an_idle_symbol() -> None:
    evaluator = SymbolEvaluator("X", SymbolState(), [rule(**MOVE, fire="once_per_bar_close")])
    assert evaluator.process([Tick(T0, 100, 1), Tick(T0 + 10 * S, 103, 1)], now_ms=1) == []
    assert evaluator.next_timer_ms() == T0 + M
    assert evaluator.close_bars(T0 + 59 * S, now_ms=2) == []
    [fired] = evaluator.close_bars(T0 + M, now_ms=2)
    assert (fired.window_start_ms, fired.fired_at_ms) == (T0, 2)
    late = evaluator.process([Tick(T0 + 30 * S, 103, 1)], now_ms=3)
    assert late == [fired]  # a later tick of the bar the watermark closed fires nothing more
    assert not evaluator.is_expired(T0 + 5 * M)
    assert evaluator.is_expired(T0 + 30 * S + evaluator.horizon_ms())


def test_an_idle_symbol_keeps_its_last_price_for_a_cross_and_its_once_firings() -> None:
    rules = [rule(**CROSS), rule("once", **MOVE, fire="once")]
    first = SymbolEvaluator("X", SymbolState(), rules)
    assert [f.rule for f in first.process([Tick(T0, 100, 1), Tick(T0 + S, 103, 1)], 1)] == ["once"]
    assert not first.is_expired(T0 + 3 * DAY_MS)  # a cross after a weekend still counts
    weekend = SymbolEvaluator("X", first.state, rules)
    assert [f.rule for f in weekend.process([Tick(T0 + 3 * DAY_MS, 106, 1)], now_ms=2)] == ["r"]
    assert weekend.is_expired(T0 + 8 * DAY_MS)
    assert not weekend.forget()  # the fired `once` rule is all that is kept
    stored = SymbolState.model_validate_json(weekend.state.model_dump_json())
    assert (stored.last_ms, stored.ticks, list(stored.rules)) == (None, [], ["once"])
    later = [Tick(T0 + 9 * DAY_MS, 100, 1), Tick(T0 + 9 * DAY_MS + S, 104, 1)]
    assert SymbolEvaluator("X", stored, rules).process(later, now_ms=3) == []
    assert SymbolEvaluator("X", SymbolState(), [rule(**CROSS)]).forget()
