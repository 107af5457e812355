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
    updated_through: datetime | None = None  # the newest ``updated_at`` among the loaded bars
    refreshes: int = 0  # incremental refreshes since the last full load


FULL_RELOAD_EVERY = 500
"""Incremental refreshes between two full loads (a table rewritten by hand is caught then)."""


def _series_of(rows: list[tuple[object, ...]]) -> dict[str, HotSeries]:
    """Rows of ``symbol, BAR_COLUMNS`` sorted by symbol and window start, as series."""
    series: dict[str, HotSeries] = {}
    for row in rows:
        bar = to_bar(row[1:])
        hot = series.setdefault(str(row[0]), HotSeries())
        hot.starts.append(bar.window_start)
        hot.bars.append(bar)
        hot.fragments.append(render_bar(bar))
    return series


def _merged(old: HotSeries, new: HotSeries, cutoff: datetime) -> HotSeries:
    """``old`` from ``cutoff`` on, with the bars of ``new`` replacing or joining its own."""
    keep = bisect.bisect_left(old.starts, cutoff)
    bars = {
        bar.window_start: (bar, text)
        for bar, text in zip(old.bars[keep:], old.fragments[keep:], strict=True)
    }
    bars |= {
        bar.window_start: (bar, text) for bar, text in zip(new.bars, new.fragments, strict=True)
    }
    merged = HotSeries()
    for start in sorted(moment for moment in bars if moment >= cutoff):
        bar, text = bars[start]
        merged.starts.append(start)
        merged.bars.append(bar)
        merged.fragments.append(text)
    return merged


class HotTier:
    """Recent 1-minute and 1-hour bars; a request inside the window never reaches the engine."""

    def __init__(self, engine: Engine, window_days: int, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.window = timedelta(days=window_days)
        self.clock = clock
        self._tables: dict[Interval, HotTable] = {}

    def load(self, interval: Interval, snapshot_id: int | None) -> None:
        """Bring ``interval``'s bars up to the table's snapshot when it differs from the loaded one.

        Gold bars carry ``updated_at`` (when a batch last wrote them), so a new snapshot costs
        reading the bars written since the newest one held (a micro-batch's worth), not the
        whole window again: a week of 1-minute bars of 500 symbols is 5 M bars. Every
        ``FULL_RELOAD_EVERY`` refreshes, and whenever nothing is held, the window is read whole.
        """
        loaded = self._tables.get(interval)
        if (loaded is not None and loaded.snapshot_id == snapshot_id) or not self.window:
            return
        cutoff = self.clock() - self.window
        cutoff = cutoff.replace(second=0, microsecond=0)
        if interval is Interval.HOUR:
            # Whole UTC days, so daily bars built from the hot hours are complete.
            cutoff = cutoff.replace(hour=0, minute=0) + timedelta(days=1)
        sql = (
            f"SELECT symbol, {BAR_COLUMNS}, updated_at FROM {interval.table} "
            "WHERE window_start >= ?"
        )
        params: list[object] = [cutoff]
        incremental = (
            loaded is not None
            and loaded.updated_through is not None
            and loaded.refreshes < FULL_RELOAD_EVERY
            and cutoff >= loaded.cutoff
        )
        if incremental:
            assert loaded is not None
            # ">=": a batch that wrote at the same instant as the last one read is read again.
            sql += " AND updated_at >= ?"
            params.append(loaded.updated_through)
        _, rows = self.engine.query(sql + " ORDER BY symbol, window_start", params)
        changed = _series_of([row[:-1] for row in rows])
        newest = max((row[-1] for row in rows if row[-1] is not None), default=None)
        if incremental and loaded is not None:
            series = {
                symbol: _merged(old, changed.pop(symbol, HotSeries()), cutoff)
                if symbol in changed or cutoff > loaded.cutoff
                else old
                for symbol, old in loaded.series.items()
            }
            series |= changed  # symbols new to the window
            series = {symbol: hot for symbol, hot in series.items() if hot.starts}
            through = max(filter(None, (loaded.updated_through, newest)), default=None)
            table = HotTable(snapshot_id, cutoff, series, through, loaded.refreshes + 1)
        else:
            table = HotTable(snapshot_id, cutoff, changed, newest)
        # One assignment: readers on other threads see the old table or the new, never a mix.
        self._tables[interval] = table
        log.info(
            "hot tier %s %s: %d bars read since %s",
            "refreshed" if incremental else "loaded", interval.table, len(rows), cutoff,
        )  # fmt: skip

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
