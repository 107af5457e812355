from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

import finlake
from finlake.errors import ContractViolation
from finlake.transactions.generate import (
    TRANSACTION_SCHEMA,
    generate_transactions,
    iter_transactions,
    write_transactions_csv,
)
from finlake.transactions.spending import FRAUD_PATTERNS
from tests.conftest import run_cli

START = datetime(2026, 3, 1, tzinfo=UTC)
CONTRACT = Path(finlake.__file__).parent / "contracts" / "avro" / "transaction.avsc"


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    return generate_transactions(
        rows=6_000, accounts=150, fraud_rate=0.03, seed=11, start=START, with_pattern=True
    )


def test_columns_are_the_contract_fields_with_contract_types(sample: pa.Table) -> None:
    fields = [field["name"] for field in json.loads(CONTRACT.read_text())["fields"]]
    assert TRANSACTION_SCHEMA.names == fields
    assert sample.drop_columns(["fraud_pattern"]).schema == TRANSACTION_SCHEMA


def test_counts_ids_accounts_and_time_range(sample: pa.Table) -> None:
    assert sample.num_rows == 6_000
    assert pc.sum(sample["is_fraud"]).as_py() == 180
    assert pc.count_distinct(sample["transaction_id"]).as_py() == 6_000
    assert pc.count_distinct(sample["account_id"]).as_py() <= 150
    first, last = pc.min_max(sample["timestamp"]).values()
    assert first.as_py() >= START
    assert last.as_py() < START + timedelta(days=30)
    assert pc.all(pc.not_equal(sample["amount"], pa.scalar(0, pa.decimal128(18, 2)))).as_py()


def test_same_seed_same_rows_other_seed_other_rows(sample: pa.Table) -> None:
    again = generate_transactions(
        rows=6_000, accounts=150, fraud_rate=0.03, seed=11, start=START, with_pattern=True
    )
    other = generate_transactions(rows=6_000, accounts=150, fraud_rate=0.03, seed=12, start=START)
    assert again.equals(sample)
    assert not other.equals(sample.drop_columns(["fraud_pattern"]))


def test_every_fraud_pattern_is_present_and_only_on_fraud_rows(sample: pa.Table) -> None:
    frame = sample.to_pandas()
    assert set(frame.loc[frame.is_fraud, "fraud_pattern"]) == set(FRAUD_PATTERNS)
    assert frame.loc[~frame.is_fraud, "fraud_pattern"].isna().all()


def test_card_testing_is_a_burst_of_tiny_online_payments(sample: pa.Table) -> None:
    frame = sample.to_pandas()
    testing = frame[frame.fraud_pattern == "card_testing"]
    assert (testing.channel == "ecommerce").all()
    assert (testing.amount.astype(float) < 5).all()
    assert (testing.status == "declined").mean() > 0.4
    # Consecutive probes on one account are seconds to minutes apart.
    gaps = testing.groupby("account_id").timestamp.diff().dropna()
    assert gaps.median() < pd.Timedelta(minutes=3)


def test_foreign_spend_and_sprees_leave_the_usual_places(sample: pa.Table) -> None:
    frame = sample.to_pandas()
    genuine = frame[~frame.is_fraud]
    usual_country = genuine.groupby("account_id").country.agg(lambda c: c.mode().iloc[0])
    foreign = frame[frame.fraud_pattern == "foreign_spend"]
    assert (foreign.country != foreign.account_id.map(usual_country)).all()
    usual_merchants = genuine.groupby("account_id").merchant.agg(set)
    spree = frame[frame.fraud_pattern == "new_merchant_spree"]
    pairs = zip(spree.account_id, spree.merchant, strict=True)
    unseen = [merchant not in usual_merchants.get(account, set()) for account, merchant in pairs]
    assert sum(unseen) / len(unseen) > 0.8


def test_amount_spikes_are_far_above_the_account_median(sample: pa.Table) -> None:
    frame = sample.to_pandas()
    frame["amount"] = frame.amount.astype(float)
    median = frame[~frame.is_fraud & (frame.amount > 0)].groupby("account_id").amount.median()
    spikes = frame[frame.fraud_pattern == "amount_spike"]
    ratio = spikes.amount / spikes.account_id.map(median)
    assert ratio.median() > 5


def test_blocks_have_disjoint_accounts_and_unique_ids() -> None:
    blocks = list(
        iter_transactions(
            rows=4_000, accounts=90, fraud_rate=0.02, seed=5, start=START, block_rows=1_000
        )
    )
    assert len(blocks) == 4
    accounts = [set(block["account_id"].to_pylist()) for block in blocks]
    assert all(not (a & b) for i, a in enumerate(accounts) for b in accounts[i + 1 :])
    ids = pa.concat_tables(blocks)["transaction_id"]
    assert pc.count_distinct(ids).as_py() == 4_000
    assert sum(pc.sum(block["is_fraud"]).as_py() for block in blocks) == 80


def test_csv_round_trips_to_the_same_rows(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    summary = write_transactions_csv(
        path, rows=2_000, accounts=40, fraud_rate=0.05, seed=3, start=START, days=10
    )
    assert (summary.rows, summary.fraud_rows) == (2_000, 100)
    header = path.read_text().splitlines()[0].replace('"', "").split(",")
    assert header == TRANSACTION_SCHEMA.names
    read = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={"timestamp": pa.string(), "merchant_category": pa.string()}
        ),
    )
    expected = generate_transactions(
        rows=2_000, accounts=40, fraud_rate=0.05, seed=3, start=START, days=10
    )
    assert read["transaction_id"].equals(expected["transaction_id"])
    parsed = [datetime.fromisoformat(text) for text in read["timestamp"].to_pylist()]
    assert parsed == expected["timestamp"].to_pylist()
    assert [str(v) for v in expected["amount"].to_pylist()] == [
        f"{v:.2f}" for v in read["amount"].to_pylist()
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rows": 0, "accounts": 1, "fraud_rate": 0.01}, "must be >= 1"),
        ({"rows": 10, "accounts": 1, "fraud_rate": 0.9}, "between 0 and 0.5"),
        (
            {"rows": 10, "accounts": 1, "fraud_rate": 0.1, "start": datetime(2026, 1, 1)},
            "time zone",
        ),
    ],
)
def test_bad_arguments_get_one_line_errors(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ContractViolation, match=message):
        generate_transactions(**arguments)  # type: ignore[arg-type]


def test_cli_writes_the_file_and_reports_counts(tmp_path: Path) -> None:
    path = tmp_path / "out" / "tx.csv"
    done = run_cli(
        "transactions", "generate", "--rows", "500", "--accounts", "20", "--fraud-rate", "0.02",
        "--output", str(path), "--seed", "4", "--start", "2026-02-01",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote 500 transactions (10 fraud) of 20 accounts from 2026-02-01" in done.stdout
    assert len(path.read_text().splitlines()) == 501


def test_cli_rejects_a_bad_start_in_one_line(tmp_path: Path) -> None:
    done = run_cli(
        "transactions", "generate", "--rows", "5", "--output", str(tmp_path / "x.csv"),
        "--start", "yesterday",
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == "error: --start 'yesterday' is not an ISO 8601 date or time"
