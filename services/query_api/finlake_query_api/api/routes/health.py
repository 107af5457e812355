"""/healthz, /readyz and /metrics: open, for probes and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from finlake_query_api.api.deps import StateDep
from finlake_query_api.api.problems import PROBLEMS
from finlake_query_api.errors import LakeUnavailableError
from finlake_query_api.schemas import Status

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Status:
    return Status(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: the lake's catalog answered the latest snapshot poll",
    responses={503: PROBLEMS[503]},
)
async def readyz(state: StateDep) -> Status:
    if not state.market.is_ready:
        raise LakeUnavailableError("the lake has not answered yet")
    return Status(status="ready")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.telemetry.registry), media_type=CONTENT_TYPE_LATEST)
