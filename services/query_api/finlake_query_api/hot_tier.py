"""The hot tier: the last N days of gold bars in memory, reloaded when a new snapshot lands."""

from __future__ import annotations

import bisect
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from finlake.lake.tables import MARKET_OHLC_1H, MARKET_OHLC_1M
from finlake.query import Engine, python_values, with_declared_types
from finlake_query_api.bars import BAR_COLUMNS, Bar, Interval, render_bar, render_bars_arrow, to_bar

log = logging.getLogger(__name__)
SPECS = {spec.identifier: spec for spec in (MARKET_OHLC_1M, MARKET_OHLC_1H)}


class HotSeries:
    """One symbol's recent bars, sorted by window start, each also rendered as JSON.

    ``rows`` holds the bars as Arrow (``BAR_COLUMNS``); the ``Bar`` objects, which only daily
    bars and metrics need, are built from it on first use: a week of 1-minute bars of 500
    symbols is 5 M bars, whose ``Bar``s cost more than the rest of a load together.
    """

    def __init__(
        self, starts: list[datetime] | None = None, fragments: list[str] | None = None,
        rows: pa.Table | None = None,
    ) -> None:  # fmt: skip
        self.starts = starts or []
        self.fragments = fragments or []
        self.rows = rows
        self._bars: list[Bar] | None = None

    @property
    def bars(self) -> list[Bar]:
        """The bars as ``Bar``s (built once, on first use)."""
        if self._bars is None:
            rows = self.rows
            columns = [] if rows is None else [python_values(c) for c in rows.columns]
            self._bars = [to_bar(row) for row in zip(*columns, strict=True)]
        return self._bars

    def bars_between(self, lo: int, hi: int) -> list[Bar]:
        """The bars ``lo:hi`` as ``Bar``s, building only those (unless all are built already):
        a page of a series replaced by the last snapshot costs its own bars, not the week's."""
        if self._bars is not None or self.rows is None:
            return self.bars[lo:hi]
        part = self.rows.slice(lo, max(0, hi - lo))
        return [to_bar(row) for row in zip(*map(python_values, part.columns), strict=True)]

    def between(self, start: datetime, end: datetime) -> tuple[int, int]:
        """Index range of the bars with ``start <= window_start < end``."""
        return bisect.bisect_left(self.starts, start), bisect.bisect_left(self.starts, end)


def _by_symbol(table: pa.Table) -> dict[str, HotSeries]:
    """``symbol, BAR_COLUMNS`` rows sorted by symbol and window start, as one series per symbol."""
    if not table.num_rows:
        return {}
    bars = table.select(BAR_COLUMNS.split(", "))
    fragments = render_bars_arrow(bars)
    if fragments is None:  # a value without an exact column-wise text: per bar
        fragments = [render_bar(bar) for bar in HotSeries(rows=bars).bars]
    starts = python_values(table.column("window_start"))
    runs = pc.run_end_encode(table.column("symbol").combine_chunks())
    series, begin = {}, 0
    for symbol, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        series[str(symbol)] = HotSeries(
            starts[begin:end], fragments[begin:end], bars.slice(begin, end - begin)
        )
        begin = end
    return series


def _merged(old: HotSeries, new: HotSeries, cutoff: datetime) -> HotSeries:
    """``old`` from ``cutoff`` on, with the bars of ``new`` replacing or joining its own.

    New bars are the latest ones, so everything before the first of them is kept as slices
    (lists and Arrow, no copy per bar); only the short tail after it is merged bar by bar.
    """
    keep = bisect.bisect_left(old.starts, cutoff)
    split = (
        max(keep, bisect.bisect_left(old.starts, new.starts[0])) if new.starts else len(old.starts)
    )
    tail = {start: ("old", index) for index, start in enumerate(old.starts[split:], split)}
    tail |= {start: ("new", index) for index, start in enumerate(new.starts)}
    order = [tail[start] for start in sorted(tail) if start >= cutoff]
    sources = {"old": old, "new": new}
    starts = old.starts[keep:split] + [sources[s].starts[i] for s, i in order]
    fragments = old.fragments[keep:split] + [sources[s].fragments[i] for s, i in order]
    pieces = [] if old.rows is None else [old.rows.slice(keep, split - keep)]
    for source, index in order:  # tails are a few bars: one slice each is cheap enough
        rows = sources[source].rows
        if rows is not None:
            pieces.append(rows.slice(index, 1))
    rows = pa.concat_tables(pieces) if pieces else None
    if rows is not None and rows.column(0).num_chunks > 64:  # a slice or two per refresh
        rows = rows.combine_chunks()
    return HotSeries(starts, fragments, rows)


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
REWRITE_MARGIN = timedelta(minutes=15)
"""How far before the newest ``updated_at`` held a refresh reads again. Writers stamp
``updated_at`` when their job starts and commit later, so a commit can land after another one
whose stamps are newer (the hourly batch's MERGE finishing after a stream micro-batch): its bars
are older than the newest stamp held, yet new to the hot tier. A writer whose commit comes more
than this after its stamp is caught by the next full load."""


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
        reading the bars written since shortly before the newest one held (``REWRITE_MARGIN``:
        a few minutes of micro-batches), not the whole window again: a week of 1-minute bars of
        500 symbols is 5 M bars. Every ``FULL_RELOAD_EVERY`` refreshes, whenever nothing is
        held, and after a refresh that failed, the window is read whole.
        """
        loaded = self._tables.get(interval)
        if (loaded is not None and loaded.snapshot_id == snapshot_id) or not self.window:
            return
        try:
            table = self._read(interval, snapshot_id, loaded)
        except Exception:
            if loaded is not None:
                # Whatever failed (the engine, or merging its answer into the bars held), the
                # next poll reads the window whole rather than try the same refresh for ever.
                self._tables[interval] = dataclasses.replace(loaded, refreshes=FULL_RELOAD_EVERY)
            raise
        # One assignment: readers on other threads see the old table or the new, never a mix.
        self._tables[interval] = table

    def _read(
        self, interval: Interval, snapshot_id: int | None, loaded: HotTable | None
    ) -> HotTable:
        """``interval``'s bars at ``snapshot_id``: the window read whole, or ``loaded`` updated."""
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
            # Bars re-read replace themselves; a commit that landed late is not skipped.
            sql += " AND updated_at >= ?"
            params.append(loaded.updated_through - REWRITE_MARGIN)
        rows = self.engine.query_arrow(sql + " ORDER BY symbol, window_start", params)
        # Typed as the table declares, not as the engine inferred from this result's values:
        # bars of different reads are concatenated.
        rows = with_declared_types(rows, SPECS[interval.table])
        changed = _by_symbol(rows)
        newest = pc.max(rows.column("updated_at")).as_py() if rows.num_rows else None
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
        log.info(
            "hot tier %s %s: %d bars read since %s",
            "refreshed" if incremental else "loaded", interval.table, rows.num_rows, cutoff,
        )  # fmt: skip
        return table

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
