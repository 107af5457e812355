"""The bronze -> silver rules, run by DuckDB on bronze-shaped rows (the batch runs the same SQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from finlake.transactions.preview import RulePreview
from finlake.transactions.rules import (
    CHANNEL_LIMITS,
    TEXT_COLUMNS,
    TRANSACTION_EXPECTATIONS,
    failed_rule_sql,
    typed_select_sql,
)
from finlake.transactions.upload import TRANSACTIONS_RAW_ARROW

RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
GOOD = {
    "transaction_id": "tx1",
    "account_id": "acc1",
    "card_id": "card1",
    "timestamp": "2026-05-01T10:00:00Z",
    "amount": "12.50",
    "currency": "EUR",
    "merchant": "Corner Grocer",
    "merchant_category": "5411",
    "country": "DE",
    "channel": "pos",
    "entry_mode": "chip",
    "status": "approved",
    "is_fraud": "false",
}


def bronze(*changes: dict[str, Any]) -> pa.Table:
    rows = []
    for number, change in enumerate(changes, start=1):
        rows.append(
            {"upload_id": "up-1", "file_name": "f.csv", "row_number": number,
             "received_at": RECEIVED, **GOOD, "upload_issue": None, "raw_record": None, **change}
        )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=TRANSACTIONS_RAW_ARROW)


def verdicts(table: pa.Table) -> list[str | None]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.register("rows", table)
    typed = typed_select_sql("rows", ("row_number", "upload_issue", "received_at"), "TIMESTAMPTZ")
    sql = f"SELECT {failed_rule_sql()} FROM ({typed}) AS t ORDER BY row_number"
    return [row[0] for row in connection.execute(sql).fetchall()]


def test_a_good_row_and_its_accepted_spellings_pass() -> None:
    spellings = [
        {},
        {"timestamp": "2026-05-01T12:00:00+02:00", "currency": "eur", "channel": " POS "},
        {"timestamp": "2026-05-01 10:00:00", "amount": "-3", "is_fraud": "", "card_id": ""},
        {"entry_mode": "", "status": "", "is_fraud": "TRUE", "country": "gb"},
    ]
    assert verdicts(bronze(*spellings)) == [None] * len(spellings)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"upload_issue": "field count: 3 fields, the header has 13"}, "record_readable"),
        ({"transaction_id": "  "}, "transaction_id_present"),
        ({"account_id": None}, "account_id_present"),
        ({"merchant": "M" * 201}, "field_lengths"),
        ({"card_id": "c" * 65}, "field_lengths"),
        ({"merchant": '=HYPERLINK("http://evil.example","x")'}, "formula_injection"),
        ({"merchant": "+cmd|' /C calc'!A0"}, "formula_injection"),
        ({"account_id": "@SUM(1+1)"}, "formula_injection"),
        ({"merchant": "Corner\nGrocer"}, "control_characters"),
        ({"merchant": "Tab\tShop"}, "control_characters"),
        ({"timestamp": "yesterday"}, "timestamp_valid"),
        ({"timestamp": "2026-05-01T12:06:00Z"}, "timestamp_not_in_future"),
        ({"amount": "12,50"}, "amount_valid"),
        ({"amount": "12.345"}, "amount_two_decimals"),
        ({"amount": "0.00"}, "amount_non_zero"),
        ({"currency": "XYZ"}, "currency_known"),
        ({"merchant": ""}, "merchant_present"),
        ({"merchant_category": "54x1"}, "merchant_category_valid"),
        ({"merchant_category": "541"}, "merchant_category_valid"),
        ({"country": "ZZ"}, "country_known"),
        ({"channel": "teleport"}, "channel_known"),
        ({"entry_mode": "telepathy"}, "entry_mode_known"),
        ({"status": "pending"}, "status_known"),
        ({"is_fraud": "maybe"}, "is_fraud_boolean"),
        ({"channel": "contactless", "amount": str(CHANNEL_LIMITS["contactless"] + 1)},
         "amount_within_channel_limit"),
    ],
)  # fmt: skip
def test_each_rule_catches_its_bad_value(change: dict[str, Any], rule: str) -> None:
    assert verdicts(bronze(change)) == [rule]


def test_a_row_is_attributed_to_the_first_rule_it_fails() -> None:
    assert verdicts(bronze({"currency": "XYZ", "channel": "teleport", "amount": "0"})) == [
        "amount_non_zero"
    ]


def test_every_rule_has_a_name_and_a_description() -> None:
    names = [e.name for e in TRANSACTION_EXPECTATIONS]
    assert len(set(names)) == len(names)
    assert all(e.description for e in TRANSACTION_EXPECTATIONS)
    assert set(TEXT_COLUMNS) <= set(TRANSACTIONS_RAW_ARROW.names)


def test_the_preview_counts_failures_per_rule_over_several_tables() -> None:
    preview = RulePreview()
    preview.add(bronze({}, {"currency": "XYZ"}))
    preview.add(bronze({"currency": "ABC"}, {"merchant": "=1+1"}))
    assert preview.counts() == {"currency_known": 2, "formula_injection": 1}
