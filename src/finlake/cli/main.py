"""The ``finlake`` entry point: command groups, plug-ins from the deployables, one-line errors."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer
from pydantic import ValidationError
from rich.markup import escape

from finlake.cli import config, contracts, demo, ml, query, stack, transactions
from finlake.cli.output import errors
from finlake.errors import FinlakeError

app = typer.Typer(
    help="finlake: a financial lakehouse on Kafka, Spark and Iceberg.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(config.app, name="config")
app.add_typer(contracts.app, name="contracts")
app.add_typer(transactions.app, name="transactions")
# Its commands import the `ml` extra only when they run.
app.add_typer(ml.app, name="ml")
app.command("demo")(demo.demo)
app.command("query")(query.query)


def _add_plugins() -> None:
    # Deployables contribute their command groups (e.g. `ingest`) without the core importing them.
    for entry in entry_points(group="finlake.cli"):
        try:
            group = entry.load()
        except (ImportError, AttributeError) as error:
            # One broken member must not take the whole CLI down; say which and go on.
            errors.print(
                f"[yellow]warning:[/] `finlake {entry.name}` unavailable: {escape(str(error))}"
            )
            continue
        app.add_typer(group, name=entry.name)


def main() -> None:
    """Run the CLI; a finlake error prints one line and exits 1, never a traceback."""
    try:
        _add_plugins()
        app()
    except FinlakeError as error:
        # Messages quote user input (paths, patterns such as [A-Z]+): never read as markup.
        errors.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        errors.print(
            f"[red]error:[/] invalid configuration: {escape(problems)}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
