"""``finlake transactions generate``: realistic transaction CSVs with labelled fraud."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from finlake.cli.output import console
from finlake.cli.transactions import app
from finlake.errors import ContractViolation
from finlake.transactions.generate import write_transactions_csv


def _utc(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise ContractViolation(f"--start {value!r} is not an ISO 8601 date or time") from error
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@app.command("generate")
def generate(
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write.")],
    rows: Annotated[int, typer.Option(min=1, help="How many transactions.")] = 100_000,
    accounts: Annotated[int, typer.Option(min=1, help="How many accounts.")] = 1_000,
    fraud_rate: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of fraudulent transactions.")
    ] = 0.01,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same file.")] = 0,
    days: Annotated[int, typer.Option(min=1, help="Days of event time covered.")] = 30,
    start: Annotated[
        str | None,
        typer.Option(help="First day (ISO 8601, UTC); default: `days` days before today."),
    ] = None,
) -> None:
    """Write a CSV of card transactions with labelled fraud patterns (is_fraud)."""
    summary = write_transactions_csv(
        output,
        rows=rows,
        accounts=accounts,
        fraud_rate=fraud_rate,
        seed=seed,
        start=_utc(start),
        days=days,
    )
    console.print(
        f"wrote {summary.rows:,} transactions ({summary.fraud_rows:,} fraud) of "
        f"{summary.accounts:,} accounts from {summary.start:%Y-%m-%d} to {summary.end:%Y-%m-%d} "
        f"UTC to {summary.path}",
        highlight=False,
    )
