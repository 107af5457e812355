"""/v1/alerts/stream: server-sent events for the dashboard's live feed (keep-alives for now)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from finlake_query_api.api.deps import ApiKeyDep, StateDep
from finlake_query_api.api.problems import PROBLEMS

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=PROBLEMS)


async def _events(request: Request, keepalive_s: float) -> AsyncIterator[str]:
    yield "retry: 5000\nevent: ready\ndata: {}\n\n"
    while not await request.is_disconnected():
        await asyncio.sleep(keepalive_s)
        yield ": keep-alive\n\n"


@router.get(
    "/stream",
    summary="Alert events as server-sent events (text/event-stream)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def stream(_: ApiKeyDep, state: StateDep, request: Request) -> StreamingResponse:
    return StreamingResponse(
        _events(request, state.settings.api.keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
