"""/v1/quotes: the latest price of every symbol."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from finlake_query_api.api.deps import ApiKeyDep, MarketDep
from finlake_query_api.api.problems import PROBLEMS
from finlake_query_api.errors import UnknownSymbolError
from finlake_query_api.schemas import QuoteList, QuotePublic

router = APIRouter(prefix="/v1/quotes", tags=["quotes"], responses=PROBLEMS)


@router.get("/latest", summary="Latest quote per symbol (close of its latest 1-minute bar)")
async def latest_quotes(
    _: ApiKeyDep,
    market: MarketDep,
    symbol: Annotated[
        list[str] | None,
        Query(max_length=100, description="Only these symbols (repeat the parameter)."),
    ] = None,
) -> QuoteList:
    latest = await run_in_threadpool(market.latest_quotes)
    wanted = sorted(set(symbol)) if symbol else sorted(latest)
    unknown = [name for name in wanted if name not in latest]
    if unknown:
        raise UnknownSymbolError(f"no quotes for {', '.join(repr(n) for n in unknown[:5])}")
    now = market.clock()  # a writer's clock ahead of ours does not date a price in the future
    return QuoteList(
        quotes=[
            QuotePublic(symbol=name, price=latest[name].bar.close,
                        as_of=min(latest[name].as_of, now), volume=latest[name].bar.volume)
            for name in wanted
        ]
    )  # fmt: skip
