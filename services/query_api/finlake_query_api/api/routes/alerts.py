"""/v1/alerts: the live feed as server-sent events, the recent alerts, and the endpoint the alert
service's dashboard channel posts to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from finlake_query_api.alert_feed import Accepted, AlertBatch, AlertFeed, AlertItem, RecentAlerts
from finlake_query_api.api.deps import ApiKeyDep, PublisherKeyDep, StateDep
from finlake_query_api.api.problems import PROBLEMS, problem_responses

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=PROBLEMS)


def _sse(item: AlertItem) -> str:
    return f"id: {item.event_id}\nevent: {item.type}\ndata: {item.model_dump_json()}\n\n"


async def _events(request: Request, feed: AlertFeed, keepalive_s: float) -> AsyncIterator[str]:
    subscriber = feed.subscribe()
    try:
        yield "retry: 5000\nevent: ready\ndata: {}\n\n"
        while not await request.is_disconnected():
            try:
                item = await asyncio.wait_for(subscriber.get(), timeout=keepalive_s)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is None:
                return
            yield _sse(item)
    finally:
        feed.unsubscribe(subscriber)


@router.get(
    "/stream",
    summary="Alert events as server-sent events (text/event-stream)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def stream(_: ApiKeyDep, state: StateDep, request: Request) -> StreamingResponse:
    return StreamingResponse(
        _events(request, state.alert_feed, state.settings.api.keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("", summary="The most recent alerts, newest first")
async def recent(
    _: ApiKeyDep, state: StateDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    since: Annotated[AwareDatetime | None, Query(description="Only alerts fired after.")] = None,
) -> RecentAlerts:  # fmt: skip
    return RecentAlerts(alerts=state.alert_feed.recent(limit, since))


@router.post(
    "/events",
    summary="Publish alert events to the live feed (the alert service; a publishing key)",
    responses=problem_responses(403),
)
async def publish(_: PublisherKeyDep, state: StateDep, batch: AlertBatch) -> Accepted:
    if state.feed_relay is not None:  # every replica's feed, through Kafka
        return await state.feed_relay.publish(batch.events)
    return state.alert_feed.publish(batch.events)
