"""``finlake api serve``: the query API and dashboard on this machine."""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Annotated

import typer
from pydantic import SecretStr

from finlake_query_api.config import Settings

app = typer.Typer(help="The query API and dashboard.", no_args_is_help=True)
log = logging.getLogger("finlake_query_api")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: settings).")] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port to bind, 0: a free one (default: settings)."),
    ] = None,
) -> None:  # fmt: skip
    """Serve the /v1 API, /metrics and the dashboard until interrupted."""
    # Imported here: `finlake --help` loads every plug-in and should not pay for the web stack.
    from finlake_query_api.main import create_app
    from finlake_query_api.server import build_server

    logging.basicConfig(level=logging.INFO, format='{"level":"%(levelname)s","msg":"%(message)s"}')
    settings = Settings()
    # `is None` for the port: --port 0 asks for a free one (uvicorn logs which it took). An empty
    # --host stays the settings' host, not every interface.
    api = settings.api.model_copy(
        update={
            "host": host or settings.api.host,
            "port": settings.api.port if port is None else port,
        }
    )
    fragment = ""
    if not api.key_digests():
        # No key configured: issue one for this run only, so data endpoints are never open. It
        # may publish alerts too: one user on this machine runs `finlake alerts serve` with it.
        key = secrets.token_urlsafe(24)
        api = api.model_copy(
            update={"api_keys": [SecretStr(key)], "publisher_keys": [SecretStr(key)]}
        )
        fragment = f"#key={key}"
        typer.echo(
            f"no API key configured; this run accepts X-API-Key: {key} (to show alerts here: "
            f"FINLAKE_ALERTING__DASHBOARD__API_KEY={key} finlake alerts serve ...)",
            err=True,
        )
    elif not api.publisher_digests():
        typer.echo(
            "no publishing key configured (FINLAKE_API__PUBLISHER_KEYS, ..._KEY_HASHES, "
            "..._KEYS_FILE): alerts posted to the live feed are refused",
            err=True,
        )
    settings = settings.model_copy(update={"api": api})
    if api.port:
        typer.echo(f"dashboard: http://{api.host}:{api.port}/{fragment}", err=True)
    else:
        typer.echo(
            f"dashboard: http://{api.host}:PORT/{fragment}, PORT as uvicorn logs it", err=True
        )
    server = build_server(create_app(settings), api.host, api.port)
    # uvicorn stops cleanly on Ctrl-C, then re-raises it: a stop asked for is a success (as
    # `uvicorn.run` has it), `make api` included.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # the app's startup failed: uvicorn logged why
        raise typer.Exit(3)
