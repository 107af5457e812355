"""The hourly batch on a real Iceberg lake: uploads -> silver + quarantine -> summaries, re-runs.

One batch run over a generated file and a file of bad input is shared by the asserts; the re-run
test then checks that the same hour twice and an incremental run without new bronze change
nothing, and that a later upload is processed alone.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings
from finlake.ml.settings import MlSettings
from finlake.ml.store import FraudFeatureStore
from finlake.transactions.generate import write_transactions_csv
from finlake.transactions.rules import TEXT_COLUMNS
from finlake.transactions.upload import UploadResult, open_lake, upload_transactions
from finlake_spark.io import one_row
from finlake_spark.jobs.transactions_batch import RunResult
from finlake_spark.jobs.transactions_run import run_once
from tests.conftest import run_cli
from tests.integration.conftest import empty_lake

HEADER = ",".join(TEXT_COLUMNS)
GOOD = "{id},acc-bad,card9,{ts},25.00,EUR,Corner Grocer,5411,DE,pos,chip,approved,false"
TABLES = ("validated", "quarantine", "summary")


@dataclass(frozen=True)
class FirstRun:
    settings: FinlakeSettings
    spark: SparkSession
    generated: UploadResult
    bad: UploadResult
    result: RunResult
    bad_rows: dict[str, int]
    duplicated_id: str


def bad_file(duplicate_of: str, when: datetime) -> tuple[bytes, dict[str, int]]:
    """Bad input of the issue's list, one kind per record, and the rule each must get."""
    ts = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    good = GOOD.format(id="{id}", ts=ts)
    records = [
        (good.format(id="ok-1"), None),
        (good.format(id="ok-2").replace("25.00", "-7.10"), None),
        (good.format(id="f1").replace("Corner Grocer", '"=HYPERLINK(""http://x.example"")"'),
         "formula_injection"),
        (good.format(id="n1").replace("Corner Grocer", '"Corner\nGrocer"'), "control_characters"),
        (good.format(id="h1").replace("Corner Grocer", "H" * 100_000), "field_lengths"),
        (good.format(id="w1").rsplit(",", 3)[0], "record_readable"),
        (good.format(id="c1").replace("EUR", "EUX"), "currency_known"),
        (good.format(id="z1").replace("25.00", "0"), "amount_non_zero"),
        (good.format(id="t1").replace(ts, "2099-01-01T00:00:00Z"), "timestamp_not_in_future"),
        (good.format(id="l1").replace("pos", "atm").replace("25.00", "99999.00"),
         "amount_within_channel_limit"),
        (good.format(id=duplicate_of), "duplicate_transaction_id"),
        (good.format(id="a1").replace(ts, "0026-05-01T10:00:00Z"), "timestamp_not_before_1970"),
        # Padded with a no-break space and an ideographic space: trimmed as the preview trims.
        (good.format(id="ok-4\u00a0").replace("acc-bad", "\u3000acc-pad"), None),
    ]  # fmt: skip
    text = "\n".join([HEADER, *(record for record, _ in records)]) + "\n"
    data = text.encode() + good.format(id="e1").replace("Corner", "Caf\xe9").encode("cp1252")
    expected = Counter(rule for _, rule in records if rule) + Counter({"record_readable": 1})
    return data + b"\n", dict(expected)


def rows(spark: SparkSession, table: str) -> list[dict[str, Any]]:
    frame = spark.table(f"lake.transactions.{table}")
    return sorted((row.asDict() for row in frame.collect()), key=repr)


def snapshots(spark: SparkSession) -> dict[str, int]:
    return {
        table: spark.sql(f"SELECT count(*) FROM lake.transactions.{table}.snapshots").first()[0]
        for table in TABLES
    }


def upload(settings: FinlakeSettings, data: bytes, name: str) -> UploadResult:
    catalog, warehouse = open_lake(settings)
    return upload_transactions(catalog, warehouse, io.BytesIO(data), file_name=name)


@pytest.fixture(scope="module")
def first_run(
    spark_lake: tuple[SparkSession, FinlakeSettings], tmp_path_factory: pytest.TempPathFactory
) -> FirstRun:
    spark, settings = spark_lake
    empty_lake(settings, "transactions")
    start = (datetime.now(UTC) - timedelta(days=4)).replace(hour=0, minute=0, second=0)
    path: Path = tmp_path_factory.mktemp("transactions") / "generated.csv"
    write_transactions_csv(
        path, rows=400, accounts=12, fraud_rate=0.05, seed=7, start=start, days=3
    )
    generated = upload(settings, path.read_bytes(), "generated.csv")
    first_id = path.read_text().splitlines()[1].split(",")[0].strip('"')
    data, bad_rows = bad_file(first_id, start + timedelta(days=1, hours=3))
    bad = upload(settings, data, "bad.csv")
    result = run_once(settings, spark=spark)
    return FirstRun(settings, spark, generated, bad, result, bad_rows, first_id)


def test_every_row_lands_in_silver_or_quarantine_with_its_reason(first_run: FirstRun) -> None:
    counts = first_run.result.counts
    total = first_run.generated.rows_total + first_run.bad.rows_total
    assert counts.rows_in == total == 400 + 14
    validated = rows(first_run.spark, "validated")
    quarantine = rows(first_run.spark, "quarantine")
    assert len(validated) + len(quarantine) == total
    assert len({row["transaction_id"] for row in validated}) == len(validated) == 403
    by_rule = Counter(row["rule"] for row in quarantine)
    assert by_rule == Counter(first_run.bad_rows)
    assert counts.quarantined_by_rule == first_run.bad_rows
    # The upload's DuckDB preview and the Spark batch apply the same rules.
    preview = Counter(first_run.bad.failing_by_rule)
    assert preview == by_rule - Counter({"duplicate_transaction_id": 1})


def test_the_run_is_recorded_with_its_bronze_range_and_counts(first_run: FirstRun) -> None:
    result = first_run.result
    [run] = [row for row in rows(first_run.spark, "batch_runs") if row["run_id"] == result.run_id]
    counts = result.counts
    assert run["mode"] == "incremental"
    assert (run["bronze_from_snapshot"], run["hour_start"]) == (None, None)
    assert run["bronze_to_snapshot"] == result.bronze_to_snapshot is not None
    assert (run["rows_in"], run["validated_rows"], run["quarantined_rows"]) == (
        counts.rows_in,
        counts.validated_rows,
        counts.quarantined_rows,
    )
    assert run["quarantined_by_rule"] == counts.quarantined_by_rule == first_run.bad_rows
    assert run["duration_s"] == pytest.approx(result.duration_s)


def test_a_run_record_holds_an_empty_map_as_well(first_run: FirstRun) -> None:
    schema = first_run.spark.table("lake.transactions.batch_runs").schema
    row = {field.name: None for field in schema} | {"run_id": "r", "rows_in": 3}
    none, some = (
        one_row(first_run.spark, row | {"quarantined_by_rule": by_rule}, schema).first()
        for by_rule in ({}, {"amount_valid": 2})
    )
    assert (none.run_id, none.rows_in, none.quarantined_by_rule) == ("r", 3, {})
    assert some.quarantined_by_rule == {"amount_valid": 2}


def test_quarantine_keeps_the_text_as_uploaded_with_upload_and_row_number(
    first_run: FirstRun,
) -> None:
    quarantine = {row["rule"]: row for row in rows(first_run.spark, "quarantine")}
    formula = quarantine["formula_injection"]
    assert formula["merchant"] == '=HYPERLINK("http://x.example")'
    assert (formula["upload_id"], formula["file_name"]) == (first_run.bad.upload_id, "bad.csv")
    assert formula["row_number"] == 3
    assert quarantine["field_lengths"]["merchant"] == "H" * 100_000
    assert quarantine["control_characters"]["merchant"] == "Corner\nGrocer"
    garbled = [r for r in rows(first_run.spark, "quarantine") if r["rule"] == "record_readable"]
    assert {r["row_number"] for r in garbled} == {6, 14}
    assert any(r["raw_record"] and r["transaction_id"] is None for r in garbled)
    assert any(r["merchant"] and "Caf\\xe9" in r["merchant"] for r in garbled)
    assert "validated first" in quarantine["duplicate_transaction_id"]["detail"]


def test_silver_is_typed_utc_and_the_first_received_copy_wins(first_run: FirstRun) -> None:
    validated = {row["transaction_id"]: row for row in rows(first_run.spark, "validated")}
    refund = validated["ok-2"]
    assert refund["amount"] == Decimal("-7.10")
    assert refund["timestamp"].tzinfo is None  # Spark gives UTC wall time (session zone UTC)
    assert refund["row_number"] == 2
    # bad.csv repeats the generated file's first id with other values; the earlier upload stays.
    assert validated["ok-4"]["account_id"] == "acc-pad"
    kept = validated[first_run.duplicated_id]
    assert (kept["upload_id"], kept["row_number"]) == (first_run.generated.upload_id, 1)
    assert kept["account_id"] != "acc-bad"


def test_summaries_match_silver_per_account_hour_and_day(first_run: FirstRun) -> None:
    validated = rows(first_run.spark, "validated")
    expected: dict[tuple[str, str, datetime, str], list[Decimal]] = defaultdict(list)
    for row in validated:
        moment: datetime = row["timestamp"]
        hour = moment.replace(minute=0, second=0, microsecond=0)
        for granularity, start in (("hour", hour), ("day", hour.replace(hour=0))):
            expected[(row["account_id"], granularity, start, row["currency"])].append(row["amount"])
    summary = {
        (r["account_id"], r["granularity"], r["window_start"], r["currency"]): r
        for r in rows(first_run.spark, "summary")
    }
    assert set(summary) == set(expected)
    for key, amounts in expected.items():
        window = summary[key]
        assert window["transaction_count"] == len(amounts)
        assert window["amount_sum"] == sum(amounts)
        assert sum(window["count_by_category"].values()) == len(amounts)
        assert sum(window["amount_by_channel"].values()) == sum(amounts)
    bad_day = summary[("acc-bad", "day", validated_day(validated, "ok-1"), "EUR")]
    assert (bad_day["transaction_count"], bad_day["amount_sum"]) == (2, Decimal("17.90"))
    assert bad_day["count_by_category"] == {"5411": 2}


def validated_day(validated: list[dict[str, Any]], transaction_id: str) -> datetime:
    moment = next(r["timestamp"] for r in validated if r["transaction_id"] == transaction_id)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def test_reruns_change_nothing_and_a_new_upload_is_processed_alone(first_run: FirstRun) -> None:
    spark, settings = first_run.spark, first_run.settings
    before = {table: rows(spark, table) for table in TABLES}
    before_snapshots = snapshots(spark)

    again = run_once(settings, spark=spark)
    assert again.is_noop
    hour = first_run.bad.received_at
    same_hour = run_once(settings, spark=spark, hour=hour)
    assert same_hour.counts.rows_in == first_run.result.counts.rows_in
    assert (same_hour.counts.validated_rows, same_hour.counts.quarantined_rows) == (0, 0)
    assert same_hour.counts.summary_rows == 0
    assert {table: rows(spark, table) for table in TABLES} == before
    assert snapshots(spark) == before_snapshots

    when = next(r["timestamp"] for r in before["validated"] if r["transaction_id"] == "ok-1")
    later = "\n".join([
        HEADER,
        GOOD.format(id="ok-3", ts=f"{when:%Y-%m-%dT%H:%M:%S}Z"),
        GOOD.format(id="ok-1", ts=f"{when:%Y-%m-%dT%H:%M:%S}Z").replace("25.00", "1.00"),
    ]) + "\n"  # fmt: skip
    upload(settings, later.encode(), "later.csv")
    third = run_once(settings, spark=spark)
    assert (third.counts.rows_in, third.counts.validated_rows) == (2, 1)
    assert third.counts.quarantined_by_rule == {"duplicate_transaction_id": 1}
    # The day of the new row is summarised again, every account's windows of it, nothing else.
    day_start = when.replace(hour=0, minute=0, second=0, microsecond=0)
    of_that_day = [
        r
        for r in rows(spark, "summary")
        if day_start <= r["window_start"] < day_start + timedelta(days=1)
    ]
    assert third.counts.summary_rows == len(of_that_day)
    other_days = [r for r in before["summary"] if r["window_start"].date() != day_start.date()]
    assert all(r in rows(spark, "summary") for r in other_days)
    after = {r["transaction_id"]: r for r in rows(spark, "validated")}
    assert after["ok-1"]["amount"] == Decimal("25.00")  # the first received copy stays
    day = next(
        r for r in rows(spark, "summary")
        if (r["account_id"], r["granularity"]) == ("acc-bad", "day")
    )  # fmt: skip
    assert (day["transaction_count"], day["amount_sum"]) == (3, Decimal("42.90"))


def test_pipeline_run_transactions_once_says_what_it_did(tmp_path: Path) -> None:
    """The command a user runs: upload, then one run whose JVM uses the throughput collector."""
    env = {"FINLAKE_HOME": str(tmp_path / "home")}
    csv = tmp_path / "day.csv"
    when = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [
        GOOD.format(id="cli-1", ts=when),
        GOOD.format(id="cli-2", ts=when).replace("25.00", "0"),
    ]
    csv.write_text("\n".join([HEADER, *rows]) + "\n")
    assert run_cli("transactions", "upload", str(csv), env=env).returncode == 0
    # -Xlog:gc makes each JVM name its collector at start on stdout: the launcher's, the driver's.
    done = run_cli(
        "pipeline", "run", "transactions", "--once",
        env=env | {"JAVA_TOOL_OPTIONS": "-Xlog:gc"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (
        "transactions (new bronze): 2 rows read, 1 new in transactions.validated, 1 new in "
        "transactions.quarantine (amount_non_zero 1), " in done.stdout
    )
    assert "Using Parallel" in done.stdout
    # Then the features of silver are refreshed and materialized online for scoring.
    assert "features: 1 transactions, online store materialized up to " in done.stdout
    store = FraudFeatureStore(
        FinlakeSettings.model_validate({"home": tmp_path / "home"}), MlSettings()
    )
    keys = {
        "account_id": "acc-bad",
        "currency": "EUR",
        "merchant": "Corner Grocer",
        "country": "DE",
    }
    online = store.online([keys]).iloc[0]
    assert (online["history_count"], online["merchant_tx_count"]) == (1, 1)
    assert (online["currency_tx_count"], online["amount_sum_24h"]) == (1, 25.0)
    again = run_cli("pipeline", "run", "transactions", "--once", env=env, timeout=300)
    assert "nothing to do" in again.stdout
    assert "features:" not in again.stdout  # silver did not change


def test_a_run_after_maintenance_expired_its_start_reads_all_of_bronze_once(
    first_run: FirstRun,
) -> None:
    """No run for longer than maintenance keeps snapshots (a suspended schedule, an outage): the
    snapshot the last run ended at is gone, and the next run must neither fail nor add twice."""
    spark, settings = first_run.spark, first_run.settings
    held = rows(spark, "validated")
    last = run_once(settings, spark=spark)  # whatever the tests before left unprocessed
    when = f"{datetime.now(UTC) - timedelta(days=1):%Y-%m-%dT%H:%M:%S}Z"
    for name in ("x-1", "x-2"):
        upload(settings, f"{HEADER}\n{GOOD.format(id=name, ts=when)}\n".encode(), f"{name}.csv")
    now = datetime.now(UTC) + timedelta(seconds=1)
    spark.sql(
        "CALL lake.system.expire_snapshots(table => 'transactions.raw', "
        f"older_than => TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}', retain_last => 1)"
    ).collect()
    kept = {
        row[0]
        for row in spark.sql("SELECT snapshot_id FROM lake.transactions.raw.history").collect()
    }
    assert last.bronze_to_snapshot not in kept, "the test expired the last run's end"

    after = run_once(settings, spark=spark)
    assert after.bronze_from_snapshot is None, "read from the start"
    assert after.counts.rows_in == 2, "the rows that had landed are not judged again"
    assert (after.counts.validated_rows, after.counts.quarantined_rows) == (2, 0)
    validated = rows(spark, "validated")
    ids = [row["transaction_id"] for row in validated]
    assert len(ids) == len(set(ids)) == len(held) + last.counts.validated_rows + 2
    assert run_once(settings, spark=spark).is_noop, "and incremental again from there"
