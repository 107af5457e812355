from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from finlake.errors import ConfigurationError
from finlake_ingestion.pacing import EventPacer, RatePacer, parse_duration, parse_pace

T0 = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)


class Ticker:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "speed"),
    [("fast", None), ("original", 1.0), ("10x", 10.0), ("2.5x", 2.5), ("ORIGINAL", 1.0)],
)
def test_parse_pace(text: str, speed: float | None) -> None:
    assert parse_pace(text) == speed


@pytest.mark.parametrize("text", ["slow", "0x", "x10", "-2x", ""])
def test_parse_pace_rejects_nonsense(text: str) -> None:
    with pytest.raises(ConfigurationError, match="pace"):
        parse_pace(text)


@pytest.mark.parametrize(
    ("text", "seconds"), [("1s", 1), ("250ms", 0.25), ("5m", 300), ("2h", 7200), ("1d", 86400)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_parse_duration_rejects_nonsense() -> None:
    with pytest.raises(ConfigurationError, match="duration"):
        parse_duration("soon")


def test_event_pacer_spaces_records_by_event_time_over_speed() -> None:
    clock = Ticker()
    pacer = EventPacer(10.0, clock)
    assert pacer.delay_for(T0) == 0
    assert pacer.delay_for(T0 + timedelta(seconds=30)) == pytest.approx(3.0)
    clock.now += 2.0
    assert pacer.delay_for(T0 + timedelta(seconds=30)) == pytest.approx(1.0)
    clock.now += 5.0
    assert pacer.delay_for(T0 + timedelta(seconds=40)) == 0  # behind schedule: no wait
    assert pacer.delay_for(T0 - timedelta(seconds=5)) == 0  # out of order: no wait


def test_rate_pacer_lets_rate_records_through_per_second() -> None:
    clock = Ticker()
    pacer = RatePacer(100.0, clock)
    assert pacer.delay_for(50) == 0
    assert pacer.delay_for(50) == pytest.approx(0.5)
    clock.now += 0.5
    assert pacer.delay_for(50) == pytest.approx(0.5)
