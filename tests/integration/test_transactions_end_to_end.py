"""Flow 2 as a user runs it, command by command on a fresh home: generate a CSV with labelled
fraud, upload it, run the hourly batch (Spark: silver, quarantine, summaries, then the features
materialized online), train, score; then the next upload's batch scores its rows itself. The
PR-AUC bar is the one of ``test_ml_flow`` (at least 0.5 and ten times the held-out fraud base
rate: a model ranking at random scores the base rate)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import run_cli

ROWS = 6_000


def test_generate_upload_batch_train_score(tmp_path: Path) -> None:
    env = {"FINLAKE_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    csv = tmp_path / "transactions.csv"

    def step(*args: str, timeout: float = 300) -> str:
        done = run_cli(*args, env=env, timeout=timeout)
        assert done.returncode == 0, f"finlake {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    step(
        "transactions", "generate", "--rows", str(ROWS), "--accounts", "150",
        "--fraud-rate", "0.03", "--seed", "21", "--days", "21", "--output", str(csv),
    )  # fmt: skip
    step("transactions", "upload", str(csv))
    batch = step("pipeline", "run", "transactions", "--once", timeout=600)
    assert f"{ROWS:,} rows read, {ROWS:,} new in transactions.validated" in batch
    assert f"features: {ROWS:,} transactions, online store materialized up to " in batch
    assert "predictions: none made: model 'finlake-fraud' has no 'champion' version yet" in batch
    trained = step("ml", "train")
    pr_auc = float(re.search(r"PR-AUC \(held out\)\s*│\s*([0-9.]+)", trained).group(1))  # type: ignore[union-attr]
    base_rate = float(
        re.search(r"fraud base rate \(held out\)\s*│\s*([0-9.]+)", trained).group(1)  # type: ignore[union-attr]
    )
    assert 0.0 < base_rate < 0.1, trained
    assert pr_auc >= max(0.5, 10 * base_rate), trained
    scored = step("ml", "score")
    assert re.search(rf"scored {ROWS:,} transactions with finlake-fraud version 1: ", scored)
    # The next hour's upload: the batch scores its transactions with the champion itself.
    more = tmp_path / "more.csv"
    step(
        "transactions", "generate", "--rows", "300", "--accounts", "150", "--fraud-rate", "0.03",
        "--seed", "22", "--days", "1", "--output", str(more),
    )  # fmt: skip
    step("transactions", "upload", str(more))
    batch = step("pipeline", "run", "transactions", "--once", timeout=600)
    assert "300 rows read, 300 new in transactions.validated" in batch
    assert re.search(
        r"predictions: scored 300 new transactions with finlake-fraud version 1: ", batch
    )
