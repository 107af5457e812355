"""A response cache in front of FastAPI for the market reads (pure ASGI, no body buffering on hits).

A repeated ``GET`` of a cacheable path with the same query string is answered from memory, after
the same API-key and rate-limit checks the routes make, without FastAPI's routing, dependency
resolution and parameter validation (which cost most of a cached request: profiled, ~75%).

Entries are keyed by path and raw query string and live only as long as the lake's snapshot ids
they were computed at: a new snapshot of any market table empties the cache. A request without
an explicit ``end`` defaults to "now", so its key also carries the current second. The key
leaves out the Origin: entries hold no CORS headers, which CORSMiddleware, outside this one,
adds to every answer for the request at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from finlake.errors import FinlakeError
from finlake_query_api.api.deps import authorize

if TYPE_CHECKING:
    from finlake_query_api.state import AppState

CACHEABLE_PREFIXES = ("/v1/symbols",)


@dataclass(frozen=True)
class Entry:
    """One cached 200 response."""

    headers: list[tuple[bytes, bytes]]
    body: bytes
    route: Any


class ResponseCache:
    """Serves repeated market reads from memory; see the module docstring."""

    def __init__(self, app: ASGIApp, state: AppState, max_entries: int = 1024) -> None:
        self.app = app
        self.state = state
        self.entries: LRUCache[tuple[str, bytes, int | None], Entry] = LRUCache(max_entries)
        self._tokens: dict[str, Any] = {}

    def _current(self) -> None:
        tokens = self.state.market.tokens
        if tokens is not self._tokens and tokens != self._tokens:
            self.entries.clear()
        self._tokens = tokens

    def _key(self, scope: Scope) -> tuple[str, bytes, int | None]:
        query: bytes = scope.get("query_string", b"")
        second = None if b"end=" in query else int(self.state.market.clock().timestamp())
        return scope["path"], query, second

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith(CACHEABLE_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        self._current()
        key = self._key(scope)
        entry = self.entries.get(key)
        if entry is not None and await self._allowed(scope):
            scope["route"] = entry.route  # the metrics middleware labels by route template
            self.state.telemetry.cache_hits.inc()
            await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
            await send({"type": "http.response.body", "body": entry.body})
            return
        await self._fill(scope, receive, send, key)

    async def _allowed(self, scope: Scope) -> bool:
        key = next((v for k, v in scope["headers"] if k == b"x-api-key"), None)
        if key is None:
            return False
        try:
            await authorize(self.state, key.decode("latin-1"))
        except FinlakeError:
            return False  # the route answers with the right problem (401 or 429)
        return True

    async def _fill(
        self, scope: Scope, receive: Receive, send: Send, key: tuple[str, bytes, int | None]
    ) -> None:
        tokens = self.state.market.tokens
        headers: list[tuple[bytes, bytes]] | None = None
        chunks: list[bytes] = []
        cacheable = True

        async def capture(message: Message) -> None:
            nonlocal headers, cacheable
            if message["type"] == "http.response.start":
                # Copied before it is passed on: outer middlewares (CORS) add headers for this
                # request only, in place.
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-cache"]
                cacheable = message["status"] == 200
            elif message["type"] == "http.response.body" and cacheable:
                chunks.append(message.get("body", b""))
                cacheable = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receive, capture)
        if headers is not None and cacheable and self.state.market.tokens is tokens:
            self.entries[key] = Entry(
                [*headers, (b"x-cache", b"hit")], b"".join(chunks), scope.get("route")
            )
