"""``finlake alerts``: check rule files, run the alert service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from finlake.cli.output import console, errors
from finlake.contracts import alert_rule
from finlake.contracts.resources import ResourceError, load_resources

app = typer.Typer(help="Alert rules and the alert service (email, Slack, dashboard).")


@app.command("validate")
def validate(
    files: Annotated[
        list[Path], typer.Argument(help="AlertRule YAML files (several documents each).")
    ],
) -> None:
    """Check AlertRule files: one line per problem and exit 1, or a summary and exit 0."""
    try:
        rules = load_resources(files, kind=alert_rule.KIND)
    except ResourceError as error:
        for problem in error.problems:
            errors.print(f"[red]error:[/] {escape(str(problem))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    for rule in rules:
        spec: alert_rule.AlertRuleSpec = rule.spec
        watched = ", ".join(spec.symbols) if spec.symbols else f"/{spec.selector.pattern}/"  # type: ignore[union-attr]
        console.print(
            f"[green]ok[/] {escape(rule.name)}: {spec.condition.type.value} on {escape(watched)}"
            f" -> {', '.join(c.value for c in spec.channel_types())}",
            highlight=False,
        )
    console.print(f"{len(rules)} rule(s) valid in {len(files)} file(s)")


@app.command("serve")
def serve(
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", help="AlertRule files (default: FINLAKE_ALERTING__RULE_PATHS)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTP API port (default: settings).")] = None,
) -> None:
    """Consume the alerts topic and deliver to the dashboard, email and Slack until SIGTERM."""
    # Imported here: `finlake --help` loads every plug-in and should not pay for the service.
    from finlake_alerting.config import Settings
    from finlake_alerting.credentials import Redactor
    from finlake_alerting.logs import configure_logging
    from finlake_alerting.service import collect_secrets
    from finlake_alerting.worker import run

    settings = Settings()
    updates: dict[str, object] = {}
    if rules:
        updates["rule_paths"] = rules
    if port is not None:
        updates["port"] = port
    settings = settings.model_copy(
        update={"alerting": settings.alerting.model_copy(update=updates)}
    )
    configure_logging(settings.alerting.log_level, Redactor(collect_secrets(settings, os.environ)))
    run(settings)
