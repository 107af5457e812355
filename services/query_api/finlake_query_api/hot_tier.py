"""The hot tier: the last N days of gold bars in memory, reloaded when a new snapshot lands."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from finlake.query import Engine
from finlake_query_api.bars import BAR_COLUMNS, Bar, Interval, render_bar, to_bar

log = logging.getLogger(__name__)


@dataclass
class HotSeries:
    """One symbol's recent bars, sorted by window start, each also rendered as JSON."""

    starts: list[datetime] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)

    def between(self, start: datetime, end: datetime) -> tuple[int, int]:
        """Index range of the bars with ``start <= window_start < end``."""
        return bisect.bisect_left(self.starts, start), bisect.bisect_left(self.starts, end)


@dataclass(frozen=True)
class HotTable:
    """What was loaded from one gold table, at which snapshot, from which cutoff on."""

    snapshot_id: int | None
    cutoff: datetime
    series: dict[str, HotSeries]


class HotTier:
    """Recent 1-minute and 1-hour bars; a request inside the window never reaches the engine."""

    def __init__(self, engine: Engine, window_days: int, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.window = timedelta(days=window_days)
        self.clock = clock
        self._tables: dict[Interval, HotTable] = {}

    def load(self, interval: Interval, snapshot_id: int | None) -> None:
        """Reload ``interval``'s bars when its table's snapshot differs from the loaded one."""
        loaded = self._tables.get(interval)
        if (loaded is not None and loaded.snapshot_id == snapshot_id) or not self.window:
            return
        cutoff = self.clock() - self.window
        cutoff = cutoff.replace(second=0, microsecond=0)
        if interval is Interval.HOUR:
            # Whole UTC days, so daily bars built from the hot hours are complete.
            cutoff = cutoff.replace(hour=0, minute=0) + timedelta(days=1)
        _, rows = self.engine.query(
            f"SELECT symbol, {BAR_COLUMNS} FROM {interval.table} "
            "WHERE window_start >= ? ORDER BY symbol, window_start",
            [cutoff],
        )
        series: dict[str, HotSeries] = {}
        for row in rows:
            bar = to_bar(row[1:])
            hot = series.setdefault(str(row[0]), HotSeries())
            hot.starts.append(bar.window_start)
            hot.bars.append(bar)
            hot.fragments.append(render_bar(bar))
        # One assignment: readers on other threads see the old table or the new, never a mix.
        self._tables[interval] = HotTable(snapshot_id, cutoff, series)
        log.info("hot tier loaded %s: %d bars since %s", interval.table, len(rows), cutoff)

    def covers(self, interval: Interval, start: datetime) -> bool:
        """Whether bars from ``start`` on are all in memory."""
        source = Interval.HOUR if interval is Interval.DAY else interval
        loaded = self._tables.get(source)
        return loaded is not None and start >= loaded.cutoff

    def series(self, interval: Interval, symbol: str) -> HotSeries:
        """The in-memory bars of ``symbol`` (empty when it had none in the window)."""
        source = Interval.HOUR if interval is Interval.DAY else interval
        return self._tables[source].series.get(symbol, HotSeries())

    def has_symbol(self, symbol: str) -> bool:
        """Whether ``symbol`` has bars in memory (no set is built)."""
        return any(symbol in table.series for table in self._tables.values())

    def symbols(self) -> set[str]:
        """Symbols with bars in memory."""
        return {symbol for table in self._tables.values() for symbol in table.series}
