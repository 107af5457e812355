"""The simulate source: seeded random-walk ticks (``finlake.simulate``) at a given rate."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from finlake.contracts.models import MarketTick
from finlake.simulate import Injection, random_walk_ticks
from finlake_ingestion.pacing import RatePacer
from finlake_ingestion.sources.base import Batch

KNOWN_SYMBOLS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "BRK-B", "JPM", "V",
    "UNH", "XOM", "JNJ", "WMT", "MA", "PG", "AVGO", "HD", "CVX", "KO",
)  # fmt: skip
FOREVER = 10**12  # ticks per symbol when neither a count nor a duration ends the run


def simulated_symbols(count: int) -> tuple[str, ...]:
    """``count`` ticker names: well-known ones first, then SIM0021, SIM0022, ..."""
    extra = (f"SIM{n:04d}" for n in range(len(KNOWN_SYMBOLS) + 1, count + 1))
    return tuple(itertools.islice(itertools.chain(KNOWN_SYMBOLS, extra), count))


class SimulateSource:
    """Random-walk ticks for N symbols; event time follows the rate unless ``event_interval``."""

    name = "simulate"

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        rate: float,
        seed: int,
        count: int | None = None,
        duration_s: float | None = None,
        start: datetime | None = None,
        event_interval: timedelta | None = None,
        injections: Sequence[Injection] = (),
        batch_size: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.symbols = tuple(symbols)
        self.rate = rate
        self.seed = seed
        self.count = count
        self.duration_s = duration_s
        self.start = start
        self.injections = tuple(injections)
        if event_interval is None:
            # Event time keeps pace with the publishing rate (one step per len(symbols) ticks).
            step_s = len(self.symbols) / rate if rate > 0 else 1.0
            event_interval = timedelta(seconds=step_s)
        self.event_interval = event_interval
        self.batch_size = batch_size if rate <= 0 else max(1, min(batch_size, int(rate / 20)))
        self._clock = clock

    @property
    def total(self) -> int | None:
        """How many ticks the run publishes, when that is known up front."""
        per_symbol = self.count
        if per_symbol is None and self.duration_s is not None and self.rate > 0:
            per_symbol = max(1, round(self.duration_s * self.rate / len(self.symbols)))
        return None if per_symbol is None else per_symbol * len(self.symbols)

    def prepare(self) -> None:
        """Nothing to check: the simulator's input is its options."""

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        """Ticks in batches, paced at ``rate`` per second; ends at the count, duration or stop."""
        total = self.total
        start = self.start or datetime.now(UTC).replace(microsecond=0)
        ticks = random_walk_ticks(
            self.symbols,
            count=FOREVER if total is None else total // len(self.symbols),
            seed=self.seed,
            start=start,
            interval=self.event_interval,
            injections=self.injections,
        )
        pacer = RatePacer(self.rate, self._clock) if self.rate > 0 else None
        deadline = None if self.duration_s is None else self._clock() + self.duration_s
        while not stop.is_set():
            if deadline is not None and self._clock() >= deadline:
                return
            batch: list[MarketTick] = list(itertools.islice(ticks, self.batch_size))
            if not batch:
                return
            if pacer is not None and stop.wait(pacer.delay_for(len(batch))):
                return
            yield Batch(batch)
