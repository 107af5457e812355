"""Market data behind the routes: the hot tier first, the lake otherwise, caches per snapshot."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from finlake.errors import FinlakeError
from finlake.lake.tables import MARKET_TABLES
from finlake.query import Engine, TableNotFoundError
from finlake_query_api.bars import (
    BAR_COLUMNS,
    BAR_DATA_TIME,
    Bar,
    BarMetrics,
    Interval,
    bar_metrics,
    daily_bars,
    decode_cursor,
    encode_cursor,
    page_json,
    render_bar,
    render_bars_arrow,
    to_bar,
    utc,
)  # fmt: skip
from finlake_query_api.errors import (
    InvalidRangeError,
    LakeUnavailableError,
    UnknownSymbolError,
    lake_unavailable,
)
from finlake_query_api.hot_tier import HotTier

log = logging.getLogger(__name__)
MISSING = -1  # the token of a table the catalog does not have yet
Token = int | None
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # bounds both engines' timestamps hold
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
OUT_OF_BOUNDS = f"start and end must lie in [{EARLIEST:%Y}, {LATEST:%Y}]"


def utc_now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


def day_boundary_from(moment: datetime) -> datetime:
    """The first UTC midnight at or after ``moment``."""
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == moment else midnight + timedelta(days=1)


def request_bound(moment: datetime) -> datetime:
    """A request's start or end in UTC; InvalidRangeError unless in [EARLIEST, LATEST]."""
    try:
        moment = utc(moment)
    except OverflowError as error:  # an offset takes year 1 or 9999 past what a datetime holds
        raise InvalidRangeError(OUT_OF_BOUNDS) from error
    if not EARLIEST <= moment <= LATEST:
        raise InvalidRangeError(OUT_OF_BOUNDS)
    return moment


class Quote(NamedTuple):
    """A symbol's latest 1-minute bar, and how recent its ticks are (``BAR_DATA_TIME``)."""

    bar: Bar
    as_of: datetime


class SymbolRow(NamedTuple):
    """A symbol and the event times of its first and last tick in silver."""

    symbol: str
    first_tick: datetime | None
    last_tick: datetime | None


class Market:
    """Reads the market tables through one engine; everything cached is keyed by snapshot ids."""

    def __init__(
        self, engine: Engine, *, hot_window_days: int = 7,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:  # fmt: skip
        self.engine = engine
        self.clock = clock
        self.hot = HotTier(engine, hot_window_days, clock)
        self.tokens: dict[str, Token] = {}
        self._cache: dict[str, tuple[tuple[Token, ...], Any]] = {}
        self._lock = threading.Lock()
        self.is_ready = False

    # -- freshness -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Poll every market table's snapshot id; reload the hot tier where one changed."""
        tokens: dict[str, Token] = {}
        for spec in MARKET_TABLES:
            try:
                tokens[spec.identifier] = self.engine.snapshot_id(spec.identifier)
            except TableNotFoundError:
                tokens[spec.identifier] = MISSING
        with self._lock:
            for interval in (Interval.MINUTE, Interval.HOUR):
                if tokens[interval.table] != MISSING:
                    self.hot.load(interval, tokens[interval.table])
            # Published once the hot tier holds the new snapshots: a response computed while it
            # loaded is cached under the old ids (so dropped), never under the new ones.
            self.tokens = tokens
            self.is_ready = True

    def _ensure_polled(self) -> None:
        if not self.tokens:
            try:
                self.refresh()
            except LakeUnavailableError:
                raise
            except FinlakeError as error:  # before the first poll: as any lake failure, a 503
                raise lake_unavailable(error) from error

    def cached(self, name: str, tables: Sequence[str], compute: Callable[[], Any]) -> Any:
        """``compute()``, recomputed only when one of ``tables`` has a new snapshot."""
        self._ensure_polled()
        key = tuple(self.tokens.get(table, MISSING) for table in tables)
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = compute()
        self._cache[name] = (key, value)
        return value

    def has(self, table: str) -> bool:
        """Whether the catalog had ``table`` at the latest poll."""
        return self.tokens.get(table, MISSING) != MISSING

    def is_in_memory(self, symbol: str, interval: Interval, start: datetime | None) -> bool:
        """Whether an OHLC request from ``start`` needs no lake call (hot bars, symbol known)."""
        if start is None:
            return False
        try:
            start = request_bound(start)
        except InvalidRangeError:
            return False  # ohlc_page says so, after the symbol check
        if not self.hot.covers(interval, start):
            return False
        if self.hot.has_symbol(symbol):
            return True
        symbols = self._cache.get("symbols")
        key = tuple(self.tokens.get(t, MISSING) for t in ("market.cleaned", "market.ohlc_1h"))
        return symbols is not None and symbols[0] == key

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of bound SQL; a lake failure becomes LakeUnavailableError."""
        try:
            return self.engine.query(sql, params)[1]
        except TableNotFoundError:
            return []
        except FinlakeError as error:  # QueryError, or an engine's own (e.g. Trino unreachable)
            raise lake_unavailable(error) from error

    # -- symbols -------------------------------------------------------------------------------

    def symbols(self) -> list[SymbolRow]:
        """Every symbol with ticks or bars, with its first and last tick time."""

        def compute() -> list[SymbolRow]:
            ticks = self.has("market.cleaned") and self.query(
                'SELECT symbol, min("timestamp"), max("timestamp") FROM market.cleaned '
                "GROUP BY symbol"
            )
            rows = {str(s): SymbolRow(str(s), utc(a), utc(b)) for s, a, b in ticks or []}
            gold = self.has("market.ohlc_1h") and self.query(
                "SELECT DISTINCT symbol FROM market.ohlc_1h"
            )
            for (symbol,) in gold or []:
                rows.setdefault(str(symbol), SymbolRow(str(symbol), None, None))
            return sorted(rows.values())

        result: list[SymbolRow] = self.cached(
            "symbols", ("market.cleaned", "market.ohlc_1h"), compute
        )
        return result

    def require_symbol(self, symbol: str) -> None:
        """Raise UnknownSymbolError unless the lake has data for ``symbol``."""
        if not self.hot.has_symbol(symbol) and symbol not in {r.symbol for r in self.symbols()}:
            raise UnknownSymbolError(f"no data for symbol {symbol!r}")

    # -- bars ----------------------------------------------------------------------------------

    def resolve_range(
        self, interval: Interval, start: datetime | None, end: datetime | None
    ) -> tuple[datetime, datetime]:
        """start/end with defaults, checked: not inverted, not wider than the interval allows."""
        end = request_bound(end if end is not None else self.clock())
        start = request_bound(start) if start is not None else end - interval.default_range
        if start >= end:
            raise InvalidRangeError("start must be before end")
        if end - start > interval.max_range:
            raise InvalidRangeError(
                f"range too large for interval {interval.value}: at most "
                f"{interval.max_range.days} days"
            )
        return start, end

    @staticmethod
    def _bars_sql(
        symbol: str, interval: Interval, start: datetime, end: datetime, limit: int | None
    ) -> tuple[str, list[object]]:
        sql = (
            f"SELECT {BAR_COLUMNS} FROM {interval.table} "
            "WHERE symbol = ? AND window_start >= ? AND window_start < ? ORDER BY window_start"
        )
        params: list[object] = [symbol, start, end]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return sql, params

    def _lake_bars(
        self, symbol: str, interval: Interval, start: datetime, end: datetime, limit: int | None
    ) -> list[Bar]:
        return [
            to_bar(row) for row in self.query(*self._bars_sql(symbol, interval, start, end, limit))
        ]

    def _lake_page(
        self, symbol: str, interval: Interval, start: datetime, end: datetime, limit: int
    ) -> tuple[list[str], datetime | None]:
        """Up to ``limit`` rendered bars from the lake; the window start of the last one when
        more bars follow (the next page's cursor), else None.

        Rendered column-wise from the engine's Arrow result (see ``render_bars_arrow``): no
        ``Bar`` per row on the path of a lake request, unless a value needs the per-row text.
        """
        sql, params = self._bars_sql(symbol, interval, start, end, limit + 1)
        try:
            table = self.engine.query_arrow(sql, params)
        except TableNotFoundError:
            return [], None
        except FinlakeError as error:
            raise lake_unavailable(error) from error
        more = table.num_rows > limit
        table = table.slice(0, limit)
        rendered = render_bars_arrow(table)
        if rendered is None:
            rendered = [
                render_bar(to_bar(row)) for row in zip(*table.to_pydict().values(), strict=True)
            ]
        last = utc(table.column("window_start")[-1].as_py()) if more else None
        return rendered, last

    def bars(
        self, symbol: str, interval: Interval, start: datetime, end: datetime,
        limit: int | None = None,
    ) -> tuple[list[Bar], list[str] | None, str]:  # fmt: skip
        """The bars whose window starts in [start, end), each whole: (bars, their JSON when
        served hot, source). Daily bars are UTC days built from the hourly bars: the days that
        start in [start, end), from the hours of those days (the last one may still be filling)."""
        if interval is Interval.DAY:
            start, end = day_boundary_from(start), day_boundary_from(end)
        if self.hot.covers(interval, start):
            series = self.hot.series(interval, symbol)
            lo, hi = series.between(start, end)
            if interval is not Interval.DAY:
                hi = hi if limit is None else min(hi, lo + limit)
                return series.bars_between(lo, hi), series.fragments[lo:hi], "hot"
            days = daily_bars(series.bars_between(lo, hi))
            return days[:limit], None, "hot"
        if interval is Interval.DAY:
            days = daily_bars(self._lake_bars(symbol, Interval.HOUR, start, end, None))
            return days[:limit], None, "lake"
        return self._lake_bars(symbol, interval, start, end, limit), None, "lake"

    def ohlc_page(
        self, symbol: str, interval: Interval, start: datetime | None, end: datetime | None,
        limit: int, cursor: str | None,
    ) -> bytes:  # fmt: skip
        """One page of bars as JSON, with the cursor of the next page (if there is one)."""
        self.require_symbol(symbol)
        start, end = self.resolve_range(interval, start, end)
        begin = start
        if cursor is not None:
            after = decode_cursor(cursor, interval)
            begin = max(start, after + interval.width)
        next_cursor = None
        if begin < end and interval is not Interval.DAY and not self.hot.covers(interval, begin):
            rendered, last = self._lake_page(symbol, interval, begin, end, limit)
            next_cursor = None if last is None else encode_cursor(interval, last)
            return page_json(symbol, interval, start, end, rendered, next_cursor, "lake")
        bars, fragments, source = (
            self.bars(symbol, interval, begin, end, limit + 1) if begin < end else ([], [], "hot")
        )
        if len(bars) > limit:
            bars = bars[:limit]
            next_cursor = encode_cursor(interval, bars[-1].window_start)
        rendered = fragments[:limit] if fragments is not None else [render_bar(b) for b in bars]
        return page_json(symbol, interval, start, end, rendered, next_cursor, source)

    def metrics(
        self, symbol: str, interval: Interval, start: datetime | None, end: datetime | None
    ) -> tuple[datetime, datetime, BarMetrics | None]:
        """VWAP, returns and realized volatility of ``symbol`` over [start, end)."""
        self.require_symbol(symbol)
        start, end = self.resolve_range(interval, start, end)
        bars, _, _ = self.bars(symbol, interval, start, end)
        return start, end, bar_metrics(bars)

    # -- quotes --------------------------------------------------------------------------------

    def latest_quotes(self) -> dict[str, Quote]:
        """The latest 1-minute bar of every symbol."""

        def compute() -> dict[str, Quote]:
            if not self.has("market.ohlc_1m"):
                return {}
            rows = self.query(
                f"SELECT symbol, {BAR_COLUMNS}, {BAR_DATA_TIME} FROM ("
                "SELECT *, row_number() OVER (PARTITION BY symbol ORDER BY window_start DESC) AS n"
                " FROM market.ohlc_1m) AS latest WHERE n = 1 ORDER BY symbol"
            )
            return {str(row[0]): Quote(to_bar(row[1:-1]), utc(row[-1])) for row in rows}

        result: dict[str, Quote] = self.cached("quotes", ("market.ohlc_1m",), compute)
        return result
