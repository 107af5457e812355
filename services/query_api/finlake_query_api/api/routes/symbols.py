"""/v1/symbols: the symbols, their bars and their market metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from finlake_query_api.api.deps import ApiKeyDep, MarketDep, StateDep
from finlake_query_api.api.problems import PROBLEMS
from finlake_query_api.bars import Interval
from finlake_query_api.schemas import MarketMetrics, OhlcPage, SymbolList, SymbolPublic

router = APIRouter(prefix="/v1/symbols", tags=["symbols"], responses=PROBLEMS)

MAX_LIMIT = 10_000
SymbolPath = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9.^=_\-]{1,32}$",
        description="Ticker as the source spells it (e.g. AAPL, BRK-B, EURUSD=X, ^GSPC): up to "
        "32 characters, as the tick contract allows.",
        examples=["AAPL"],
    ),
]
IntervalQuery = Annotated[Interval, Query(description="Bar width: 1m, 1h or 1d.")]
Start = Annotated[
    datetime | None,
    Query(
        description="Inclusive start (UTC if no offset); default: end - span. Bars whose window "
        "starts in [start, end) are returned whole; daily bars are UTC days."
    ),
]
End = Annotated[
    datetime | None, Query(description="Exclusive end (UTC if no offset); default: now.")
]


@router.get("", summary="Symbols with data, with first and last tick time")
async def list_symbols(_: ApiKeyDep, market: MarketDep) -> SymbolList:
    rows = await run_in_threadpool(market.symbols)
    return SymbolList(
        symbols=[SymbolPublic(symbol=r.symbol, first_tick=r.first_tick, last_tick=r.last_tick)
                 for r in rows]
    )  # fmt: skip


@router.get(
    "/{symbol}/ohlc",
    response_model=OhlcPage,
    summary="OHLCV bars of one symbol (1m, 1h or 1d), oldest first, paginated",
)
async def ohlc(
    _: ApiKeyDep, state: StateDep, symbol: SymbolPath, interval: IntervalQuery = Interval.MINUTE,
    start: Start = None, end: End = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Bars per page.")] = 1000,
    cursor: Annotated[
        str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                          description="next_cursor of the previous page.")
    ] = None,
) -> Response:  # fmt: skip
    # The page is assembled from pre-rendered JSON (hot bars are rendered once, when loaded);
    # a page wholly in memory is served on the event loop, anything else on a worker thread.
    market = state.market
    arguments = (symbol, interval, start, end, limit, cursor)
    if market.is_in_memory(symbol, interval, start):
        body = market.ohlc_page(*arguments)
    else:
        body = await run_in_threadpool(market.ohlc_page, *arguments)
    state.telemetry.bars_served.labels("hot" if b'"source":"hot"' in body[:300] else "lake").inc()
    return Response(body, media_type="application/json")


@router.get("/{symbol}/metrics", summary="VWAP, returns and realized volatility over a window")
def metrics(
    _: ApiKeyDep, market: MarketDep, symbol: SymbolPath,
    interval: IntervalQuery = Interval.MINUTE, start: Start = None, end: End = None,
) -> MarketMetrics:  # fmt: skip
    start, end, values = market.metrics(symbol, interval, start, end)
    if values is None:
        return MarketMetrics(
            symbol=symbol, interval=interval, start=start, end=end, bar_count=0, open=None,
            close=None, high=None, low=None, volume=0, vwap=None, simple_return=None,
            log_return=None, realized_volatility=None,
        )  # fmt: skip
    return MarketMetrics(symbol=symbol, interval=interval, start=start, end=end, **values._asdict())
