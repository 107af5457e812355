"""The bronze -> silver rules, run by DuckDB on bronze-shaped rows (the batch runs the same SQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from finlake.transactions.preview import RulePreview
from finlake.transactions.rules import (
    CHANNEL_LIMITS,
    CURRENCY_MAGNITUDES,
    TEXT_COLUMNS,
    TRANSACTION_EXPECTATIONS,
    currency_codes,
    failed_rule_sql,
    typed_select_sql,
)
from finlake.transactions.upload import TRANSACTIONS_RAW_ARROW
from finlake.transforms.transactions import RULE, with_failed_rule, with_typed_columns

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
        ({"timestamp": "0026-05-01T10:00:00Z"}, "timestamp_not_before_1970"),
        ({"timestamp": "1970-01-01T00:30:00+01:00"}, "timestamp_not_before_1970"),
        ({"timestamp": "1970-01-01T00:30+01:00"}, "timestamp_not_before_1970"),
        ({"timestamp": "2026-05-01T12:06:00Z"}, "timestamp_not_in_future"),
        ({"timestamp": "2026-05-01T14:06+02:00"}, "timestamp_not_in_future"),
        ({"timestamp": "2026-05-01T10:0Z"}, "timestamp_valid"),
        ({"timestamp": "2026-05-01T10:00ZZ"}, "timestamp_valid"),
        ({"amount": "12,50"}, "amount_valid"),
        ({"amount": "12.345"}, "amount_two_decimals"),
        ({"amount": "5.00000000001"}, "amount_two_decimals"),
        ({"merchant": "Corner\x7fGrocer"}, "control_characters"),
        ({"transaction_id": "tx\x9b1"}, "control_characters"),
        ({"card_id": "card\x001"}, "control_characters"),
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


@pytest.mark.parametrize(
    ("currency", "channel", "amount", "rule"),
    [
        ("JPY", "contactless", "6000", None),  # about 37 euros
        ("JPY", "atm", "30000", None),
        ("KRW", "pos", "150000", None),
        ("HUF", "atm", "40000", None),
        ("IDR", "ecommerce", "500000", None),
        ("VND", "pos", "250000", None),
        ("VND", "transfer", "9000000000", None),  # the limit 10^6 * 10^4 is past an INT
        ("LBP", "pos", "9000000000", None),
        ("VND", "transfer", "10000000000.01", "amount_within_channel_limit"),
        ("JPY", "contactless", "600000", "amount_within_channel_limit"),  # beyond x100
        ("EUR", "contactless", "6000", "amount_within_channel_limit"),
        ("USD", "atm", "30000", "amount_within_channel_limit"),
    ],
)
def test_channel_limits_scale_with_what_a_unit_of_the_currency_is_worth(
    currency: str, channel: str, amount: str, rule: str | None
) -> None:
    change = {"currency": currency, "channel": channel, "amount": amount}
    assert verdicts(bronze(change)) == [rule]


def test_every_scaled_currency_is_an_iso_4217_code() -> None:
    assert set(CURRENCY_MAGNITUDES) <= set(currency_codes())


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


SHAPES = [
    # (column, text, passes): both engines must agree with the documented shapes.
    ("timestamp", "2026-05-01T10:00:00Z", True),
    ("timestamp", "2026-05-01 10:00", True),
    ("timestamp", "2026-05-01T10:00:00.123456789", True),
    ("timestamp", "2026-05-01T12:00:00+0200", True),
    ("timestamp", "2026-05-01T12:00:00+02", True),
    ("timestamp", "2026-05-01T00:00:00-10:00", True),
    ("timestamp", "2026-05-01T20:00:00+14:00", True),
    ("timestamp", "2026-05-01T10:00Z", True),  # a zone right after the minutes
    ("timestamp", "2026-05-01 10:00Z", True),
    ("timestamp", "2026-05-01T12:00+02:00", True),
    ("timestamp", "2026-05-01T12:00+0200", True),
    ("timestamp", "2026-05-01T05:00-05", True),
    ("timestamp", "2026-05-01T10:0Z", False),
    ("timestamp", "2026-05-01T10:00ZZ", False),
    ("timestamp", "2026-05-01T10:00z", False),
    ("timestamp", "2026-05-01T10:00 Z", False),
    ("timestamp", "2026-05-01T10:00+2", False),
    ("timestamp", "2026-05-01T10:00+02:0", False),
    ("timestamp", "2026-05-01T10:00+020", False),
    ("timestamp", "2026-05-01T10:00+15:00", False),
    ("timestamp", "2026-05-01T10:00.5Z", False),  # a fraction needs seconds
    ("timestamp", "2026-02-30T10:00Z", False),
    ("timestamp", "2024", False),  # Spark: 2024-01-01
    ("timestamp", "2024-05", False),  # Spark: 2024-05-01
    ("timestamp", "2024-05-01", False),  # no time of day
    ("timestamp", "10:15:00", False),  # Spark: today
    ("timestamp", "T10:15:00", False),  # Spark: today
    ("timestamp", "2026-04-30T24:00:00Z", False),  # DuckDB: the next day
    ("timestamp", "2026-05-01T10:00:00CET", False),  # Spark: a zone name
    ("timestamp", "2026-05-01T10:00:00 +02:00", False),  # Spark: a spaced offset
    ("timestamp", "2026-05-01T10:00:00+18:30", False),  # DuckDB: beyond Spark's range
    ("timestamp", "2026-05-01  10:00:00", False),  # DuckDB: two spaces
    ("timestamp", "2026-02-30T10:00:00Z", False),
    ("amount", "12.50", True),
    ("amount", "+5", True),
    ("amount", "-.5", True),
    ("amount", "5.", True),
    ("amount", "1_000", False),  # DuckDB: 1000
    ("amount", "\u0661\u0662", False),  # Spark: Arabic-Indic digits are 12
    ("amount", "\uff11\uff12.50", False),  # Spark: full-width digits
    ("amount", "1e3", False),
    ("amount", "12,50", False),
]


def spark_bronze(spark: SparkSession, table: pa.Table) -> DataFrame:
    types = {pa.string(): StringType(), pa.int64(): LongType()}
    schema = StructType(
        [StructField(f.name, types.get(f.type, TimestampType())) for f in table.schema]
    )
    return spark.createDataFrame(table.to_pylist(), schema=schema)


def spark_verdicts(spark: SparkSession, table: pa.Table) -> list[str | None]:
    tagged = with_failed_rule(with_typed_columns(spark_bronze(spark, table)))
    return [row[RULE] for row in tagged.orderBy("row_number").collect()]


PADDED = {  # whitespace around values, of the kinds spreadsheets and other systems leave
    "transaction_id": "tx1\u00a0",
    "account_id": "\u3000acc1",
    "timestamp": "\t2026-05-01T10:00:00Z ",
    "amount": "12.50\u00a0",
    "currency": "EUR\u2003",
    "merchant": "\ufeffCorner Grocer",
    "country": " DE\u202f",
    "channel": "pos\r",
    "is_fraud": "\u00a0false",
}


def test_both_engines_trim_the_same_whitespace_off_every_field(spark: SparkSession) -> None:
    """The upload's preview (DuckDB) must count as valid exactly what the batch (Spark) keeps,
    and store the same values: an id with a no-break space must not be a second transaction."""
    table = bronze(PADDED, {"amount": "12.50\u0085x"})
    assert verdicts(table) == [None, "amount_valid"]
    assert spark_verdicts(spark, table) == [None, "amount_valid"]


def test_both_engines_judge_decimals_and_control_characters_alike(spark: SparkSession) -> None:
    cases = [
        ({"amount": "12.500"}, None),
        ({"amount": "12."}, None),
        ({"amount": "-0.10"}, None),
        ({"amount": "5.00000000001"}, "amount_two_decimals"),
        ({"amount": "12.345000000000001"}, "amount_two_decimals"),
        ({"merchant": "Caf\u00e9 \u00c0 la carte"}, None),  # Latin-1 letters are not controls
        ({"merchant": "Corner\x7fGrocer"}, "control_characters"),
        ({"merchant": "Corner\x85Grocer"}, "control_characters"),
        ({"merchant": "Corner\x00Grocer"}, "control_characters"),
        ({"account_id": "acc\x9f1"}, "control_characters"),
    ]
    table = bronze(*(change for change, _ in cases))
    expected = [rule for _, rule in cases]
    assert verdicts(table) == expected
    assert spark_verdicts(spark, table) == expected
    typed = with_typed_columns(spark_bronze(spark, table.slice(0, 1)))
    stored = typed.select(*PADDED).first()
    assert stored is not None
    typed_values = {"timestamp": datetime(2026, 5, 1, 10), "amount": Decimal("12.50"),
                    "is_fraud": False}  # fmt: skip
    assert stored.asDict() == {**{c: GOOD[c] for c in PADDED}, **typed_values}


def test_both_engines_accept_exactly_the_documented_timestamp_and_amount_shapes(
    spark: SparkSession,
) -> None:
    rule = {"timestamp": "timestamp_valid", "amount": "amount_valid"}
    table = bronze(*({column: text} for column, text, _ in SHAPES))
    expected = [None if passes else rule[column] for column, _, passes in SHAPES]
    found = {"duckdb": verdicts(table), "spark": spark_verdicts(spark, table)}
    wrong = {
        engine: [(shape, got) for shape, got, want in zip(SHAPES, rules, expected, strict=True)
                 if got != want]
        for engine, rules in found.items()
    }  # fmt: skip
    assert wrong == {"duckdb": [], "spark": []}


ZONE_AFTER_MINUTES = [
    # (text, its instant): a zone right after hh:mm, which neither engine's cast reads as it is.
    ("2026-05-01T10:00Z", datetime(2026, 5, 1, 10, 0, tzinfo=UTC)),
    ("2026-05-01 10:00Z", datetime(2026, 5, 1, 10, 0, tzinfo=UTC)),
    ("2026-05-01T12:00+02:00", datetime(2026, 5, 1, 10, 0, tzinfo=UTC)),
    ("2026-05-01T12:30+0200", datetime(2026, 5, 1, 10, 30, tzinfo=UTC)),
    ("2026-05-01T05:00-05", datetime(2026, 5, 1, 10, 0, tzinfo=UTC)),
    ("2026-05-01T15:45+05:45", datetime(2026, 5, 1, 10, 0, tzinfo=UTC)),
    ("2026-05-02T00:00+14", datetime(2026, 5, 1, 10, 0, tzinfo=UTC)),
    ("2026-04-30T23:59-10:00", datetime(2026, 5, 1, 9, 59, tzinfo=UTC)),
    ("2026-05-01T10:00", datetime(2026, 5, 1, 10, 0, tzinfo=UTC)),  # no zone: UTC
    ("2026-05-01T12:00:30+02:00", datetime(2026, 5, 1, 10, 0, 30, tzinfo=UTC)),  # has seconds
]


def test_both_engines_read_a_zone_after_the_minutes_as_the_same_utc_instant(
    spark: SparkSession,
) -> None:
    table = bronze(*({"timestamp": text} for text, _ in ZONE_AFTER_MINUTES))
    expected = [instant for _, instant in ZONE_AFTER_MINUTES]
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.register("rows", table)
    typed = typed_select_sql("rows", ("row_number",), "TIMESTAMPTZ")
    sql = f"SELECT timestamp FROM ({typed}) AS t ORDER BY row_number"
    in_duckdb = [row[0] and row[0].astimezone(UTC) for row in connection.execute(sql).fetchall()]
    frame = with_typed_columns(spark_bronze(spark, table)).orderBy("row_number")
    # Spark's TIMESTAMP comes back as UTC wall time (session zone and TZ UTC).
    in_spark = [
        row[0] and row[0].replace(tzinfo=UTC) for row in frame.select("timestamp").collect()
    ]
    assert {"duckdb": in_duckdb, "spark": in_spark} == {"duckdb": expected, "spark": expected}
    assert verdicts(table) == spark_verdicts(spark, table) == [None] * len(expected)
