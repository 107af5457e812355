"""The one line a transactions run prints, per kind of run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from finlake_spark.jobs.transactions_batch import INCREMENTAL, RunCounts, RunResult
from finlake_spark.jobs.transactions_schedule import describe, refresh_features

HOUR = datetime(2026, 5, 1, 13, tzinfo=UTC)


def result(counts: RunCounts, *, hour: datetime | None = None) -> RunResult:
    mode = "hour" if hour else INCREMENTAL
    return RunResult("run1", mode, None, None, hour, counts, 1.25)


def test_an_empty_run_says_what_it_looked_at() -> None:
    assert describe(result(RunCounts())) == (
        "transactions: no new bronze since the last run; nothing to do"
    )
    assert describe(result(RunCounts(), hour=HOUR)) == (
        "transactions: no bronze received in hour 2026-05-01 13:00 UTC"
    )


def test_a_run_names_its_counts_and_rules() -> None:
    counts = RunCounts(
        rows_in=1200, validated_rows=1100, quarantined_rows=100,
        quarantined_by_rule={"known_currency": 60, "amount_non_zero": 40}, summary_rows=30,
    )  # fmt: skip
    assert describe(result(counts, hour=HOUR)) == (
        "transactions (hour 2026-05-01 13:00): 1,200 rows read, 1,100 new in "
        "transactions.validated, 100 new in transactions.quarantine (amount_non_zero 40, "
        "known_currency 60), 30 summary windows updated, 1.2 s"
    )


def test_features_are_left_alone_when_silver_did_not_change() -> None:
    # No settings needed: nothing is read when no row reached silver.
    assert refresh_features(None, result(RunCounts(rows_in=5, quarantined_rows=5))) is None  # type: ignore[arg-type]


def test_features_are_not_refreshed_when_the_platform_turned_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINLAKE_ML__REFRESH_AFTER_BATCH", "false")
    # No settings needed either: the lake is not read.
    line = refresh_features(None, result(RunCounts(rows_in=5, validated_rows=5)))  # type: ignore[arg-type]
    assert line == "features: not refreshed after batches (FINLAKE_ML__REFRESH_AFTER_BATCH=false)"
