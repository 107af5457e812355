from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finlake.contracts.models import MarketTick
from finlake.errors import ConfigurationError
from finlake_ingestion.dedupe import SeenTicks

T0 = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)


def tick(symbol: str, minute: int) -> MarketTick:
    return MarketTick(
        symbol=symbol,
        timestamp=T0 + timedelta(minutes=minute),
        price=1.0,
        volume=1,
        source="yahoo",
        produced_at=T0,
    )


def test_fresh_drops_published_and_repeated_ticks() -> None:
    seen = SeenTicks(timedelta(minutes=5))
    seen.mark([tick("AAPL", m) for m in range(10)])
    batch = [tick("AAPL", 9), tick("AAPL", 10), tick("AAPL", 10), tick("MSFT", 9)]
    assert [(t.symbol, t.timestamp.minute) for t in seen.fresh(batch)] == [
        ("AAPL", 40),
        ("MSFT", 39),
    ]


def test_a_late_bar_inside_the_overlap_is_published_once() -> None:
    seen = SeenTicks(timedelta(minutes=5))
    seen.mark([tick("AAPL", m) for m in (0, 1, 2, 4)])  # minute 3 arrived late
    assert seen.fresh([tick("AAPL", 3)]) == [tick("AAPL", 3)]
    seen.mark([tick("AAPL", 3)])
    assert seen.fresh([tick("AAPL", 3)]) == []


def test_older_than_the_overlap_counts_as_seen() -> None:
    seen = SeenTicks(timedelta(minutes=5))
    seen.mark([tick("AAPL", 30)])
    assert seen.fresh([tick("AAPL", 25), tick("AAPL", 26)]) == [tick("AAPL", 26)]
    assert seen.latest("AAPL") == T0 + timedelta(minutes=30)
    assert seen.latest("MSFT") is None


def test_state_round_trips_through_a_file(tmp_path: Path) -> None:
    seen = SeenTicks(timedelta(minutes=5))
    seen.mark([tick("AAPL", m) for m in range(3)] + [tick("MSFT", 7)])
    seen.save(tmp_path / "state.json")
    again = SeenTicks.load(tmp_path / "state.json", timedelta(minutes=5))
    assert again.to_json() == seen.to_json()
    assert again.fresh([tick("AAPL", 2), tick("AAPL", 3)]) == [tick("AAPL", 3)]


def test_missing_state_file_is_an_empty_state(tmp_path: Path) -> None:
    assert SeenTicks.load(tmp_path / "none.json", timedelta(minutes=5)).latest("AAPL") is None


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    with pytest.raises(ConfigurationError, match=r"state\.json is unreadable"):
        SeenTicks.load(state, timedelta(minutes=5))
