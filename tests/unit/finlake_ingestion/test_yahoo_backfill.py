"""Backfill after an outage or a restart, within Yahoo's history limits (the Yahoo source on the
locally served Yahoo)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from finlake_ingestion.resilience import BreakerState
from tests.unit.finlake_ingestion.fake_yahoo import SESSION_OPEN, FakeClock, FakeYahoo
from tests.unit.finlake_ingestion.yahoo_source import make_source, value


def test_a_ten_day_gap_is_backfilled_seven_days_per_request(
    tmp_path: Path, yahoo: FakeYahoo, clock: FakeClock
) -> None:
    state = tmp_path / "state.json"
    source, _ = make_source(yahoo, clock, state_file=state)
    source.confirm(source.poll())  # watermark 14:49
    clock.advance(10 * 24 * 3600)
    restarted, metrics = make_source(yahoo, clock, state_file=state)
    asked = len(yahoo.data_requests("AAPL"))
    ticks = restarted.poll()
    first, second = yahoo.data_requests("AAPL")[asked:]
    start = SESSION_OPEN + timedelta(minutes=19 - 5)  # the watermark minus the overlap
    assert int(first["period1"]) == int(start.timestamp())
    assert int(first["period2"]) == int((start + timedelta(days=7)).timestamp())
    assert second["period1"] == first["period2"]
    aapl = sorted(t.timestamp for t in ticks if t.symbol == "AAPL")
    # The rest of the fixtures' session, all of it closed by now.
    assert aapl == [SESSION_OPEN + timedelta(minutes=m) for m in range(20, 120)]
    assert value(metrics, "finlake_ingestion_yahoo_backfill_truncated_seconds_total") == 0


def test_a_gap_beyond_yahoos_history_is_counted_once(
    tmp_path: Path, yahoo: FakeYahoo, clock: FakeClock
) -> None:
    state = tmp_path / "state.json"
    source, _ = make_source(yahoo, clock, state_file=state)
    source.confirm(source.poll())
    clock.advance(40 * 24 * 3600)  # down for forty days; 1m bars reach back thirty
    restarted, metrics = make_source(yahoo, clock, state_file=state)
    asked = len(yahoo.data_requests("AAPL"))
    restarted.poll()
    # Per symbol (AAPL, MSFT): ten days plus the overlap and the history margin.
    lost = value(metrics, "finlake_ingestion_yahoo_backfill_truncated_seconds_total")
    assert lost == pytest.approx(2 * (10 * 24 * 3600 + 11 * 60 + 5))
    # The thirty days left, seven per request.
    windows = yahoo.data_requests("AAPL")[asked:]
    assert len(windows) == 5
    oldest = clock.now - timedelta(days=30) + timedelta(minutes=5)
    assert int(windows[0]["period1"]) == int(oldest.timestamp())
    clock.advance(30)
    restarted.poll()
    lost_again = value(metrics, "finlake_ingestion_yahoo_backfill_truncated_seconds_total")
    assert lost_again == pytest.approx(lost + 2 * 30)  # only what slipped out since


BACKFILLED = "finlake_ingestion_yahoo_backfilled_ticks_total"


def test_steady_polling_and_a_new_symbols_lookback_are_not_backfill(
    yahoo: FakeYahoo, clock: FakeClock
) -> None:
    source, metrics = make_source(yahoo, clock)
    published = 0
    for _ in range(11):  # the first hour's lookback, then five minutes of polls on schedule
        batch = source.poll()
        source.confirm(batch)
        published += len(batch)
        clock.advance(30)
    assert published == 39 + 10
    assert value(metrics, BACKFILLED) == 0


def test_only_bars_an_outage_held_back_count_as_backfill(
    yahoo: FakeYahoo, clock: FakeClock
) -> None:
    source, metrics = make_source(yahoo, clock, attempts=1, breaker_failures=2)
    source.confirm(source.poll())  # 14:50:05, bars up to 14:49
    yahoo.outage = "timeout"
    for _ in range(2):
        clock.advance(30)
        source.poll()
    assert source.breaker.state is BreakerState.OPEN
    yahoo.outage = None
    clock.advance(15 * 60)  # 15:06:35
    ticks = source.poll()
    source.confirm(ticks)
    assert len(ticks) == 2 * 16  # bars 14:50..15:05 of both symbols
    # Bars closed by 15:04:35 (two poll intervals plus a bar ago) were due before: 14:50..15:03.
    assert value(metrics, BACKFILLED) == 2 * 14
    clock.advance(30)
    source.confirm(source.poll())
    assert value(metrics, BACKFILLED) == 2 * 14


def test_a_restart_backfills_the_time_the_producer_was_down(
    tmp_path: Path, yahoo: FakeYahoo, clock: FakeClock
) -> None:
    state = tmp_path / "state.json"
    source, _ = make_source(yahoo, clock, state_file=state)
    source.confirm(source.poll())  # 14:50:05, watermark 14:49
    clock.advance(10 * 60)
    restarted, metrics = make_source(yahoo, clock, state_file=state)
    ticks = restarted.poll()
    assert len(ticks) == 2 * 10  # bars 14:50..14:59
    assert value(metrics, BACKFILLED) == 2 * 8  # those closed by 14:58:05: 14:50..14:57
