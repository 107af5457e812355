"""Patterns injected into the simulator: parsed from --inject, visible in exactly their ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from finlake.contracts.alert_conditions import ConditionType
from finlake.errors import ConfigurationError
from finlake.simulate import Injection, parse_injection, random_walk_ticks

START = datetime(2026, 3, 2, 23, 50, tzinfo=UTC)
STEP = timedelta(seconds=10)


def walk(*injections: Injection, count: int = 120) -> dict[str, list[tuple[float, int]]]:
    ticks = random_walk_ticks(
        ("AAA", "BBB"), count=count, seed=3, start=START, interval=STEP, injections=injections
    )
    out: dict[str, list[tuple[float, int]]] = {"AAA": [], "BBB": []}
    for tick in ticks:
        assert tick.price is not None
        assert tick.volume is not None
        out[tick.symbol].append((tick.price, tick.volume))
    return out


def test_parse_injection() -> None:
    assert parse_injection("percent_move:msft@5m:+4%") == Injection(
        ConditionType.PERCENT_MOVE, "MSFT", timedelta(minutes=5), 4.0
    )
    assert parse_injection("volume_surge:AAA@1h:x8/2m") == Injection(
        ConditionType.VOLUME_SURGE, "AAA", timedelta(hours=1), 8.0, timedelta(minutes=2)
    )
    assert parse_injection("price_cross:AAA@120s").amount is None


@pytest.mark.parametrize("text", ["nope:AAA@1m", "price_cross:AAA", "gap:AAA@soon", "gap:A@1m:x"])
def test_bad_injections_are_one_line_errors(text: str) -> None:
    with pytest.raises(ConfigurationError, match="--inject"):
        parse_injection(text)


def test_a_step_changes_only_its_symbol_from_its_time_on() -> None:
    plain, stepped = walk(), walk(parse_injection("percent_move:AAA@5m:+5%"))
    assert stepped["BBB"] == plain["BBB"]
    assert stepped["AAA"][:30] == plain["AAA"][:30]
    for (before, _), (after, _) in zip(plain["AAA"][30:], stepped["AAA"][30:], strict=True):
        assert after == pytest.approx(before * 1.05, abs=0.011)


def test_price_cross_goes_one_percent_beyond_the_level() -> None:
    plain = walk()
    level = round(plain["AAA"][59][0] * 1.1)
    crossed = walk(parse_injection(f"price_cross:AAA@10m:{level}"))
    assert crossed["AAA"][59] == plain["AAA"][59]
    assert crossed["AAA"][60][0] == pytest.approx(level * 1.01, rel=0.002)


def test_volume_surge_lasts_its_duration() -> None:
    plain, surged = walk(), walk(parse_injection("volume_surge:BBB@2m:x10/30s"))
    assert [v for _, v in surged["BBB"]] == [
        v * 10 if 12 <= i < 15 else v for i, (_, v) in enumerate(plain["BBB"])
    ]


def test_gap_waits_for_the_first_tick_of_the_next_day() -> None:
    plain, gapped = walk(), walk(parse_injection("gap:AAA@0s:-4%"))
    midnight = 60  # 23:50 + 60 * 10 s
    assert gapped["AAA"][:midnight] == plain["AAA"][:midnight]
    assert gapped["AAA"][midnight][0] == pytest.approx(plain["AAA"][midnight][0] * 0.96, abs=0.011)
