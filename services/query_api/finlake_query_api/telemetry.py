"""Prometheus metrics of one app (its own registry, so apps in one process never collide)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Telemetry:
    """Request counts and latencies, hot-tier use, lake query failures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "finlake_api_requests", "HTTP requests.", ["route", "method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "finlake_api_request_seconds", "HTTP request latency.", ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=self.registry,
        )  # fmt: skip
        self.bars_served = Counter(
            "finlake_api_bar_pages", "OHLC pages served, by source.", ["source"],
            registry=self.registry,
        )  # fmt: skip
        self.lake_failures = Counter(
            "finlake_api_lake_failures", "Lake queries or snapshot polls that failed.",
            registry=self.registry,
        )  # fmt: skip
        self.cache_hits = Counter(
            "finlake_api_cache_hits", "Market reads answered by the response cache.",
            registry=self.registry,
        )  # fmt: skip
        self.ready = Gauge("finlake_api_ready", "1 when the lake answered.", registry=self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.telemetry.requests.labels(path, scope["method"], str(status)).inc()
            self.telemetry.latency.labels(path).observe(time.perf_counter() - started)
