"""``finlake transactions``: generate and upload transaction CSVs."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from finlake.cli.output import console
from finlake.config import get_settings
from finlake.errors import ConfigurationError
from finlake.transactions.upload import UploadResult, open_lake, upload_transactions

app = typer.Typer(help="Transaction CSVs: generate, upload.", no_args_is_help=True)


def describe_upload(result: UploadResult) -> list[str]:
    """The lines the CLI prints about an upload: id, counts, and what the rules will do."""
    if result.is_duplicate:
        return [
            f"{result.file_name}: same content as upload {result.upload_id} "
            f"({result.first_file_name}, {result.rows_total:,} rows, "
            f"received {result.received_at:%Y-%m-%d %H:%M:%S} UTC); nothing uploaded"
        ]
    lines = [
        f"uploaded {result.file_name} as {result.upload_id}: {result.rows_total:,} rows to "
        f"transactions.raw ({result.encoding}, delimiter {result.delimiter!r})"
    ]
    if result.flagged_by_issue:
        issues = ", ".join(f"{n:,} {issue}" for issue, n in sorted(result.flagged_by_issue.items()))
        lines.append(f"rows the file itself garbles: {result.rows_flagged:,} ({issues})")
    if result.failing_by_rule:
        rules = ", ".join(f"{rule} {n:,}" for rule, n in sorted(result.failing_by_rule.items()))
        failing = sum(result.failing_by_rule.values())
        lines.append(f"rows the batch will quarantine: {failing:,} ({rules})")
    lines.append(
        f"rows expected in transactions.validated: {result.rows_expected_valid:,} "
        "(before dedupe on transaction_id); run `finlake pipeline run transactions --once`"
    )
    return lines


@app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(help="CSV file with the transaction contract's columns.")],
    encoding: Annotated[
        str | None,
        typer.Option(help="Text encoding if not UTF-8 (e.g. cp1252); a BOM always wins."),
    ] = None,
    delimiter: Annotated[
        str | None, typer.Option(help="Field delimiter; default: detected (, ; tab |).")
    ] = None,
) -> None:
    """Upload a transactions CSV into bronze (transactions.raw); a repeat upload is a no-op."""
    if not file.is_file():
        raise ConfigurationError(f"{file} is not a file")
    catalog, warehouse = open_lake(get_settings())
    size = file.stat().st_size
    with (
        file.open("rb") as stream,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task(f"uploading {file.name}", total=size)
        result = upload_transactions(
            catalog,
            warehouse,
            stream,
            file_name=file.name,
            encoding=encoding,
            delimiter=delimiter,
            progress=lambda done: progress.update(task, completed=done),
        )
    for line in describe_upload(result):
        console.print(line, highlight=False)


# Commands in other modules register themselves on `app` (either may land first).
with contextlib.suppress(ImportError):
    from finlake.cli import transactions_generate  # noqa: F401
