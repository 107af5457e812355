"""The uvicorn server the query API runs in, stopping with its alert streams."""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from finlake_query_api.state import AppState


class QueryApiServer(uvicorn.Server):
    """uvicorn's server, ending the live feed's streams when it stops.

    On SIGTERM uvicorn waits for the open responses before it runs the app's shutdown, and a
    server-sent-events stream never ends by itself: without this, a replica with a dashboard
    open would neither stop its feed relay nor exit until the kubelet killed it. The browsers
    reconnect (the stream's ``retry``) to a replica still serving.
    """

    def __init__(self, config: uvicorn.Config, state: AppState) -> None:
        super().__init__(config)
        self._state = state

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._state.alert_feed.close()
        await super().shutdown(sockets)


def build_server(app: FastAPI, host: str, port: int, *, log_level: str = "info") -> QueryApiServer:
    """A server for ``create_app``'s app, with its settings' shutdown timeout."""
    state: AppState = app.state.finlake
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=state.settings.api.shutdown_timeout_s,
    )
    return QueryApiServer(config, state)
