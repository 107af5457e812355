"""/v1/quality: data quality and freshness of the market flow per layer."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from finlake_query_api.api.deps import ApiKeyDep, MarketDep
from finlake_query_api.api.problems import PROBLEMS
from finlake_query_api.quality import quality_state
from finlake_query_api.schemas import LayerPublic, QualityPublic

router = APIRouter(prefix="/v1/quality", tags=["quality"], responses=PROBLEMS)


def _lag(now: datetime, latest: datetime | None) -> float | None:
    return None if latest is None else max(0.0, (now - latest).total_seconds())


@router.get("", summary="Row counts, quarantine by rule, latest event time and lag per layer")
async def quality(_: ApiKeyDep, market: MarketDep) -> QualityPublic:
    state = await run_in_threadpool(quality_state, market)
    now = market.clock()
    layers = [
        LayerPublic(**layer._asdict(), lag_seconds=_lag(now, layer.max_event_time))
        for layer in state.layers
    ]
    return QualityPublic(
        generated_at=now,
        layers=layers,
        quarantine_by_rule=state.quarantine_by_rule,
        quarantined_rows=sum(state.quarantine_by_rule.values()),
        duplicate_rows=state.duplicate_rows,
        last_run=state.last_run,
    )
