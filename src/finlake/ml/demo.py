"""The transaction flow of ``finlake demo``: generate, upload, batch, features, train, score."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from finlake.config import FinlakeSettings
from finlake.errors import FinlakeError
from finlake.ml.scoring import score_new_transactions
from finlake.ml.settings import MlSettings
from finlake.ml.store import FraudFeatureStore, read_validated
from finlake.ml.training import train
from finlake.transactions.generate import write_transactions_csv
from finlake.transactions.upload import open_lake, upload_transactions

DEMO_ROWS = 60_000
DEMO_ACCOUNTS = 1_500
DEMO_FRAUD_RATE = 0.01


def _run_batch(settings: FinlakeSettings) -> None:
    # The batch is Spark code (a deployable); the core runs it as the CLI does.
    command = [
        sys.executable,
        "-m",
        "finlake.cli.main",
        "pipeline",
        "run",
        "transactions",
        "--once",
    ]
    done = subprocess.run(
        command, env=dict(os.environ), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        log = settings.home.resolve() / "logs" / "demo-transactions-batch.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(done.stdout + done.stderr)
        raise FinlakeError(f"the transactions batch failed; its output is in {log}")


def run_transactions_demo(
    settings: FinlakeSettings,
    console: Console,
    *,
    rows: int = DEMO_ROWS,
    accounts: int = DEMO_ACCOUNTS,
    seed: int = 7,
) -> None:
    """Flow 2 end to end on generated data; prints the model's held-out metrics."""
    ml = MlSettings()
    csv = settings.home.resolve() / "demo" / f"transactions-{seed}.csv"
    summary = write_transactions_csv(
        csv, rows=rows, accounts=accounts, fraud_rate=DEMO_FRAUD_RATE, seed=seed
    )
    console.print(
        f"generated {summary.rows:,} transactions ({summary.fraud_rows:,} labelled fraud) "
        f"of {summary.accounts:,} accounts in {_short(csv)}",
        highlight=False,
    )
    catalog, warehouse = open_lake(settings)
    with csv.open("rb") as stream:
        upload = upload_transactions(catalog, warehouse, stream, file_name=csv.name)
    console.print(
        f"uploaded as {upload.upload_id}: {upload.rows_total:,} rows in transactions.raw"
        + (" (same file as before: nothing new)" if upload.is_duplicate else ""),
        highlight=False,
    )
    console.print("running the transactions batch once (Spark: raw -> validated -> summary)")
    _run_batch(settings)
    validated = read_validated(settings)
    refresh = FraudFeatureStore(settings, ml).refresh(validated)
    console.print(
        f"features of {refresh.transactions:,} validated transactions in Feast "
        "(offline Parquet, online SQLite)",
        highlight=False,
    )
    result = train(settings, ml, validated=validated)
    table = Table("metric", "value", title=f"fraud model {ml.model_name} v{result.version}")
    table.add_row("PR-AUC (held-out latest 25%)", f"{result.pr_auc:.4f}")
    table.add_row("ROC-AUC", f"{result.roc_auc:.4f}")
    table.add_row("fraud base rate (held out)", f"{result.base_rate:.4f}")
    table.add_row("training / held-out rows", f"{result.train_rows:,} / {result.test_rows:,}")
    console.print(table)
    console.print(result.verdict, highlight=False)
    scored = score_new_transactions(settings, ml, validated=validated)
    console.print(
        f"scored {scored.scored:,} transactions into transactions.predictions "
        f"({scored.flagged:,} flagged) with version {scored.model_version}",
        highlight=False,
    )


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
