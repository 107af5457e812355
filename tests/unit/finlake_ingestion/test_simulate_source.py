from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from finlake_ingestion.sources.simulate import SimulateSource, simulated_symbols

T0 = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)


class FakeTimeStop(threading.Event):
    """A stop event whose waits move a fake clock instead of sleeping."""

    def __init__(self, now: list[float]) -> None:
        super().__init__()
        self.now = now

    def wait(self, timeout: float | None = None) -> bool:
        self.now[0] += timeout or 0.0
        return False


def collect(source: SimulateSource) -> list:
    return [tick for batch in source.batches(threading.Event()) for tick in batch.ticks]


def test_symbol_names_start_with_well_known_tickers() -> None:
    names = simulated_symbols(22)
    assert names[:3] == ("AAPL", "MSFT", "NVDA")
    assert names[-2:] == ("SIM0021", "SIM0022")
    assert len(set(names)) == 22


def test_same_seed_same_prices_compressed_event_time() -> None:
    make = lambda: SimulateSource(  # noqa: E731
        simulated_symbols(3),
        rate=0,
        seed=7,
        count=600,
        start=T0,
        event_interval=timedelta(minutes=1),
    )
    first, second = collect(make()), collect(make())
    assert len(first) == 1800
    assert [(t.symbol, t.timestamp, t.price) for t in first] == [
        (t.symbol, t.timestamp, t.price) for t in second
    ]
    assert first[-1].timestamp - first[0].timestamp == timedelta(hours=9, minutes=59)
    assert {t.source for t in first} == {"simulate"}


def test_rate_and_duration_decide_the_count_and_event_spacing() -> None:
    now = [0.0]
    source = SimulateSource(
        simulated_symbols(4), rate=100, seed=1, duration_s=2, start=T0, clock=lambda: now[0]
    )
    assert source.total == 200
    assert source.event_interval == timedelta(seconds=0.04)
    sizes = [len(batch.ticks) for batch in source.batches(FakeTimeStop(now))]
    assert sum(sizes) == 200
    assert now[0] == pytest.approx(2.0 - 0.05)  # the last batch is due 1/20 s before the end
    assert max(sizes) == 5  # rate / 20 per batch, so pacing stays smooth


def test_stop_ends_an_endless_simulation() -> None:
    source = SimulateSource(simulated_symbols(2), rate=0, seed=1, batch_size=10)
    stop = threading.Event()
    seen = 0
    for batch in source.batches(stop):
        seen += len(batch.ticks)
        if seen >= 50:
            stop.set()
    assert seen == 50
