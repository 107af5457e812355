"""``finlake stack``: Kafka and the schema registry (plus, `--with trino`, PostgreSQL, SeaweedFS
and Trino sharing the lake's catalog) as local processes."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from finlake.cli.output import console
from finlake.config import get_settings
from finlake.stack.manager import Stack

app = typer.Typer(
    help="Run the local stack on loopback: Kafka (KRaft) and Apicurio Registry; "
    "`--with trino` adds PostgreSQL, SeaweedFS (S3) and Trino 476 sharing the lake's catalog."
)


@app.command()
def up(
    with_profile: Annotated[
        str | None,
        typer.Option(
            "--with",
            help="Add a profile: `trino` (PostgreSQL catalog + S3 warehouse + Trino); "
            "remembered in $FINLAKE_HOME until `down --forget-profile`.",
        ),
    ] = None,
) -> None:
    """Start every service that is not running (idempotent; restarts crashed ones)."""
    Stack(get_settings(), with_profile=with_profile).up(report=console.print)


@app.command()
def down(
    forget_profile: Annotated[
        bool,
        typer.Option(
            "--forget-profile",
            help="Also drop the recorded profile: later runs use SQLite + local disk again.",
        ),
    ] = False,
) -> None:
    """Stop every service (SIGTERM, then SIGKILL after a grace period); data is kept."""
    Stack(get_settings()).down(report=console.print, forget=forget_profile)


@app.command()
def status() -> None:
    """Show what runs, where, since when, and whether it answers."""
    stack = Stack(get_settings())
    table = Table(
        "service",
        "state",
        "pid",
        "address",
        "since",
        "health",
        title=f"profile: {stack.profile or 'default'}",
    )
    for row in stack.status():
        health = "[green]ok[/]" if row.healthy else "[red]no answer[/]"
        state = {"running": "[green]running[/]", "crashed": "[red]crashed[/]"}.get(
            row.state, row.state
        )
        table.add_row(
            row.name,
            state,
            str(row.pid or "-"),
            row.address,
            row.since or "-",
            health if row.state == "running" else "-",
        )
    console.print(table)


@app.command()
def logs(
    service: Annotated[
        str | None,
        typer.Argument(
            help="kafka, registry; with trino: postgres, seaweedfs, trino (default: every one)"
        ),
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines (per service).")] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
) -> None:
    """Print a service's log, or every service's, each line prefixed with its service."""
    stack = Stack(get_settings())
    services = [stack.service(service)] if service else stack.services

    def prefix(name: str) -> str:
        return "" if service else f"{name:<9} | "

    for one in services:
        for line in stack.logs(one.name, lines):
            console.print(prefix(one.name) + line, markup=False, highlight=False)
    if not follow:
        return
    handles = []
    for one in services:
        log_file = stack.process(one).log_file
        if log_file.exists():
            handle = log_file.open(errors="replace")
            handle.seek(0, 2)
            handles.append((one.name, handle))
    while True:
        quiet = True
        for name, handle in handles:
            while line := handle.readline():
                quiet = False
                console.print(prefix(name) + line.rstrip("\n"), markup=False, highlight=False)
        if quiet:
            time.sleep(0.5)


@app.command()
def reset(
    service: Annotated[
        str,
        typer.Argument(
            help="kafka (also holds the registry's schemas), postgres, seaweedfs, trino"
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm deleting the data.")] = False,
) -> None:
    """Delete one stopped service's data (the only command that deletes anything)."""
    if not yes:
        typer.confirm(f"Delete all data of {service}?", abort=True)
    console.print(f"deleted {Stack(get_settings()).reset(service, report=console.print)}")
