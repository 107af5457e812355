"""``finlake config``: the effective configuration."""

from __future__ import annotations

import json

import typer

from finlake.cli.output import console
from finlake.config import effective_config, get_settings

app = typer.Typer(help="Inspect the effective configuration (FINLAKE_* environment over defaults).")


@app.command()
def show() -> None:
    """Print the effective configuration as JSON, secrets masked."""
    console.print_json(json.dumps(effective_config(get_settings())))
