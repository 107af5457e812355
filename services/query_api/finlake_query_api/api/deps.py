"""Dependencies of the routes, as Annotated aliases."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from finlake_query_api.config import hash_api_key, is_valid_key
from finlake_query_api.errors import NotAuthenticatedError, NotPermittedError, RateLimitedError
from finlake_query_api.market import Market
from finlake_query_api.state import AppState

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key the operator issued."
)


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency on a worker
# thread, and that hop cost more than the whole cached request (profiled: ~70% of its time).
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.finlake
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def authorize(state: AppState, key: str | None) -> str:
    """The caller's key digest, once the key is valid and within its rate limit."""
    if not key or not is_valid_key(key, state.key_digests):
        raise NotAuthenticatedError("a valid X-API-Key header is required")
    digest = hash_api_key(key)
    if not await state.limiter.hit(state.rate_limit, digest):
        reset_at, _ = await state.limiter.get_window_stats(state.rate_limit, digest)
        retry_after = max(1, int(reset_at - time.time()) + 1)
        raise RateLimitedError(
            f"rate limit of {state.settings.api.rate_limit} per key exceeded", retry_after
        )
    return digest


async def require_api_key(
    state: StateDep, key: Annotated[str | None, Security(api_key_header)] = None
) -> str:
    """The route-level form of :func:`authorize`."""
    return await authorize(state, key)


async def require_publisher_key(
    state: StateDep, key: Annotated[str | None, Security(api_key_header)] = None
) -> str:
    """:func:`require_api_key` for a key that may also publish to the live feed."""
    digest = await authorize(state, key)
    if digest not in state.publisher_digests:
        raise NotPermittedError(
            "this API key may read but not publish alerts: publishing keys are configured "
            "apart (FINLAKE_API__PUBLISHER_KEY_HASHES, FINLAKE_API__PUBLISHER_KEYS_FILE)"
        )
    return digest


async def get_market(state: StateDep) -> Market:
    return state.market


ApiKeyDep = Annotated[str, Depends(require_api_key)]
PublisherKeyDep = Annotated[str, Depends(require_publisher_key)]
MarketDep = Annotated[Market, Depends(get_market)]
