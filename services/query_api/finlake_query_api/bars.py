"""Pure bar logic: rows to bars, daily bars from hourly ones, metrics, cursors, JSON rendering."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from finlake_query_api.errors import InvalidCursorError

BAR_COLUMNS = "window_start, window_end, open, high, low, close, volume, trade_count, vwap"
BAR_DATA_TIME = "greatest(window_start, least(window_end, coalesce(updated_at, window_end)))"
"""SQL of how recent a gold bar's ticks are (the gold tables keep no time of the latest): none
after its end, nor after its last recompute (``updated_at``), so the bar still filling counts
from when the stream last merged it, not from its start; yet one at its start at least (event
times come from the producers' clocks, ``updated_at`` from the writer's)."""


class Interval(StrEnum):
    """Bar width: 1-minute and 1-hour bars are gold tables; daily bars are built from hourly."""

    MINUTE = "1m"
    HOUR = "1h"
    DAY = "1d"

    @property
    def table(self) -> str:
        """The gold table the bars come from (daily bars: the hourly table)."""
        return "market.ohlc_1m" if self is Interval.MINUTE else "market.ohlc_1h"

    @property
    def width(self) -> timedelta:
        """The length of one bar."""
        return {"1m": timedelta(minutes=1), "1h": timedelta(hours=1)}.get(
            self.value, timedelta(days=1)
        )

    @property
    def max_range(self) -> timedelta:
        """The widest start..end a single request may ask for."""
        return {"1m": timedelta(days=31), "1h": timedelta(days=732)}.get(
            self.value, timedelta(days=3660)
        )

    @property
    def default_range(self) -> timedelta:
        """What start defaults to, before end."""
        return {"1m": timedelta(days=1), "1h": timedelta(days=7)}.get(
            self.value, timedelta(days=365)
        )


class Bar(NamedTuple):
    """One OHLCV bar, as the gold tables hold it."""

    window_start: datetime
    window_end: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trade_count: int
    vwap: Decimal | None


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive values are taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_bar(row: Sequence[object]) -> Bar:
    """A bar from a row selected as ``BAR_COLUMNS``."""
    start, end, open_, high, low, close, volume, trades, vwap = row
    assert isinstance(start, datetime)
    assert isinstance(end, datetime)
    return Bar(
        utc(start), utc(end), Decimal(str(open_)), Decimal(str(high)), Decimal(str(low)),
        Decimal(str(close)), int(volume or 0),  # type: ignore[call-overload]  # bigint from SQL
        int(trades or 0),  # type: ignore[call-overload]  # bigint from SQL
        None if vwap is None else Decimal(str(vwap)),
    )  # fmt: skip


def daily_bars(hourly: Iterable[Bar]) -> list[Bar]:
    """UTC-day bars from hourly bars: open of the earliest hour, close of the latest, by time."""
    days: dict[datetime, list[Bar]] = {}
    for bar in sorted(hourly, key=lambda bar: bar.window_start):
        day = bar.window_start.replace(hour=0, minute=0, second=0, microsecond=0)
        days.setdefault(day, []).append(bar)
    result = []
    for day, bars in days.items():
        volume = sum(bar.volume for bar in bars)
        weighted = sum((bar.vwap or bar.close) * bar.volume for bar in bars)
        vwap = (weighted / volume).quantize(Decimal("0.000001")) if volume else None
        result.append(
            Bar(
                day, day + timedelta(days=1), bars[0].open, max(bar.high for bar in bars),
                min(bar.low for bar in bars), bars[-1].close, volume,
                sum(bar.trade_count for bar in bars), vwap,
            )
        )  # fmt: skip
    return result


def timestamp_text(moment: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` (what pydantic writes for aware UTC datetimes)."""
    text = utc(moment).isoformat().replace("+00:00", "Z")
    return text


def render_bar(bar: Bar) -> str:
    """The bar as a JSON object (decimals as strings, exact), rendered once and reused."""
    vwap = "null" if bar.vwap is None else f'"{bar.vwap}"'
    return (
        f'{{"window_start":"{timestamp_text(bar.window_start)}",'
        f'"window_end":"{timestamp_text(bar.window_end)}",'
        f'"open":"{bar.open}","high":"{bar.high}","low":"{bar.low}","close":"{bar.close}",'
        f'"volume":{bar.volume},"trade_count":{bar.trade_count},"vwap":{vwap}}}'
    )


_INTEGERS = ("volume", "trade_count")


def _arrow_text(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A bar column as the text ``render_bar`` writes; ArrowInvalid where it cannot be exact."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        # A safe cast fails on a fractional second, which isoformat would spell out.
        # Then the UTC wall clock as text: a naive cast is ~20x faster than strftime in a zone.
        seconds = column.cast(pa.timestamp("s", tz="UTC")).cast(pa.timestamp("s"))
        text = pc.replace_substring(seconds.cast(pa.string()), " ", "T", max_replacements=1)
        return pc.binary_join_element_wise(text, "Z", "")
    if name in _INTEGERS and pa.types.is_integer(kind):
        return column.cast(pa.string())
    # str(Decimal) switches to an exponent below 1e-6; Arrow never does.
    if pa.types.is_decimal(kind) and kind.scale <= 6:
        return column.cast(pa.string())
    raise pa.ArrowInvalid(f"no exact text for {name} of type {kind}")


def render_bars_arrow(table: pa.Table) -> list[str] | None:
    """``render_bar`` of each row of ``table`` (``BAR_COLUMNS``), computed column-wise in Arrow.

    A day of 1-minute bars renders in well under a millisecond this way, against several for
    building a ``Bar`` per row; None when a value has no exact text here (a fractional second,
    a float column, a null outside vwap), so the caller takes the per-row path.
    """
    names = BAR_COLUMNS.split(", ")
    try:
        texts = {name: _arrow_text(name, table.column(name)) for name in names}
    except (pa.ArrowInvalid, KeyError):
        return None
    if any(texts[name].null_count for name in names[:-1]):
        return None
    parts: list[object] = []
    for name in names[:-1]:
        opening = "{" if name == "window_start" else ","
        if name in _INTEGERS:
            parts += [f'{opening}"{name}":', texts[name]]
        else:
            parts += [f'{opening}"{name}":"', texts[name], '"']
    vwap = pc.fill_null(pc.binary_join_element_wise('"', texts["vwap"], '"', ""), "null")
    parts += [',"vwap":', vwap, "}"]
    rendered: list[str] = pc.binary_join_element_wise(*parts, "").to_pylist()
    return rendered


CURSOR_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def encode_cursor(kind: str, after: datetime, key: str | None = None) -> str:
    """An opaque cursor of a ``kind`` of page (an interval): the next page starts after the row
    at ``after`` (a window start) or, where rows share it, after the one with this ``key``."""
    raw = f"{kind}|{int(utc(after).timestamp() * 1_000_000)}" + ("" if key is None else f"|{key}")
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decoded(cursor: str, kind: str, *, is_keyed: bool) -> tuple[datetime, str | None]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, micros, *key = raw.split("|", 2)
        after = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
    except (ValueError, UnicodeDecodeError, binascii.Error, OverflowError, OSError) as error:
        raise InvalidCursorError("cursor is not one this API returned") from error
    if found != kind:
        raise InvalidCursorError(f"cursor belongs to interval {found}, not {kind}")
    if bool(key) != is_keyed:
        raise InvalidCursorError("cursor is not one this API returned")
    if not CURSOR_EARLIEST <= after < CURSOR_LATEST:  # none this API returned; year 9999 + 1d
        raise InvalidCursorError("cursor is not one this API returned")
    return after, key[0] if key else None


def decode_cursor(cursor: str, kind: str) -> datetime:
    """The window start a cursor points after; it must belong to the same kind of page."""
    after, _ = _decoded(cursor, kind, is_keyed=False)
    return after


def decode_keyed_cursor(cursor: str, kind: str) -> tuple[datetime, str]:
    """The window start and key of the row a keyed cursor points after (same kind of page)."""
    after, key = _decoded(cursor, kind, is_keyed=True)
    assert key is not None
    return after, key


class BarMetrics(NamedTuple):
    """Market metrics over a run of bars."""

    bar_count: int
    open: Decimal
    close: Decimal
    high: Decimal
    low: Decimal
    volume: int
    vwap: Decimal | None
    simple_return: float
    log_return: float
    realized_volatility: float | None


def bar_metrics(bars: Sequence[Bar]) -> BarMetrics | None:
    """VWAP, returns and realized volatility (root of summed squared log returns of closes;
    None without a return: a single bar has one close)."""
    if not bars:
        return None
    volume = sum(bar.volume for bar in bars)
    weighted = sum((bar.vwap or bar.close) * bar.volume for bar in bars)
    first, last = bars[0].open, bars[-1].close
    closes = [float(bar.close) for bar in bars]
    log_returns = [
        math.log(now / before) for before, now in itertools.pairwise(closes) if before and now
    ]
    return BarMetrics(
        len(bars), first, last, max(bar.high for bar in bars), min(bar.low for bar in bars),
        volume, (weighted / volume).quantize(Decimal("0.000001")) if volume else None,
        float(last / first - 1) if first else 0.0,
        math.log(float(last) / float(first)) if first and last else 0.0,
        math.sqrt(sum(value * value for value in log_returns)) if log_returns else None,
    )  # fmt: skip


def page_json(
    symbol: str, interval: Interval, start: datetime, end: datetime, fragments: Sequence[str],
    next_cursor: str | None, source: str,
) -> bytes:  # fmt: skip
    """The OHLC page body, assembled from pre-rendered bars."""
    head = json.dumps(
        {"symbol": symbol, "interval": interval.value, "start": timestamp_text(start),
         "end": timestamp_text(end), "source": source, "next_cursor": next_cursor},
        separators=(",", ":"),
    )  # fmt: skip
    return f'{head[:-1]},"bars":[{",".join(fragments)}]}}'.encode()
