"""The query API: ``create_app(settings)`` wires engine, hot tier, auth, errors and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from finlake.query import Engine, build_engine
from finlake_query_api.api.problems import install_problem_handlers
from finlake_query_api.api.routes import (
    alerts,
    dashboard,
    health,
    predict,
    quality,
    quotes,
    symbols,
    transactions,
)
from finlake_query_api.config import PACKAGE_DIR, Settings
from finlake_query_api.feed_relay import KafkaFeedRelay
from finlake_query_api.market import Market, utc_now
from finlake_query_api.response_cache import ResponseCache
from finlake_query_api.state import AppState
from finlake_query_api.telemetry import MetricsMiddleware, Telemetry

log = logging.getLogger(__name__)


async def _refresh(state: AppState) -> None:
    try:
        await run_in_threadpool(state.market.refresh)
    except Exception as error:  # the lake may be down or not written yet: not ready, retried
        state.market.is_ready = False
        state.telemetry.lake_failures.inc()
        log.warning("snapshot poll failed: %s", error)
    state.telemetry.ready.set(1 if state.market.is_ready else 0)


async def _poll(state: AppState) -> None:
    # The only place snapshot ids are read: requests find caches and the hot tier up to date.
    while True:
        await asyncio.sleep(max(state.settings.api.refresh_interval_s, 0.01))
        await _refresh(state)


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:  # fmt: skip
    """The ASGI app; ``engine`` defaults to the one the settings name."""
    settings = settings or Settings()
    engine = engine or build_engine(settings.api.engine, settings)
    market = Market(engine, hot_window_days=settings.api.hot_window_days, clock=clock)
    state = AppState(
        settings, market, settings.api.key_digests(), Telemetry(),
        publisher_digests=settings.api.publisher_digests(),
    )  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.api.live_feed == "kafka":
            state.feed_relay = KafkaFeedRelay(settings, state.alert_feed)
            state.feed_relay.start()
        await _refresh(state)
        poller = asyncio.create_task(_poll(state))
        yield
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        if state.feed_relay is not None:
            await state.feed_relay.stop()

    app = FastAPI(
        title="finlake query API",
        version="1.0.0",
        summary="Market bars, quotes, metrics and data quality from the finlake lakehouse.",
        lifespan=lifespan,
    )
    app.state.finlake = state
    install_problem_handlers(app)
    for module in (symbols, quotes, quality, alerts, health, dashboard, predict, transactions):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    app.mount(
        "/vendor", StaticFiles(directory=settings.api.vendor_dir, check_dir=False), name="vendor"
    )
    # The last added runs first. The cache sits inside CORS: its entries are stored without
    # CORS headers, which CORS adds to each answer, hit or not, for that request's Origin.
    if settings.api.response_cache_entries:
        app.add_middleware(
            ResponseCache, state=state, max_entries=settings.api.response_cache_entries
        )
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET"],
            allow_headers=["X-API-Key"],
        )
    app.add_middleware(MetricsMiddleware, telemetry=state.telemetry)
    return app
