"""Uploads into a real local Iceberg lake (SQLite catalog, PyIceberg): lineage, counts, repeats."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from finlake.config import FinlakeSettings
from finlake.lake.tables import TRANSACTIONS_RAW, TRANSACTIONS_UPLOADS
from finlake.transactions.csv_input import UnreadableFileError
from finlake.transactions.rules import TEXT_COLUMNS
from finlake.transactions.upload import (
    UPLOAD_PROPERTY,
    UploadResult,
    open_lake,
    upload_id_of,
    upload_transactions,
)
from tests.upload_race import race_the_same_upload

HEADER = ",".join(TEXT_COLUMNS)
ROW = "tx{n},acc1,card1,2026-05-01T10:00:00Z,12.50,EUR,Corner Grocer,5411,DE,pos,chip,approved,"
RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Catalog, str]:
    return open_lake(FinlakeSettings.model_validate({"home": tmp_path}))


def upload(
    lake: tuple[Catalog, str], data: bytes, file_name: str = "day.csv", **options: str
) -> UploadResult:
    catalog, warehouse = lake
    return upload_transactions(
        catalog, warehouse, io.BytesIO(data), file_name=file_name, clock=lambda: RECEIVED,
        **options,
    )  # fmt: skip


def csv_of(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def test_rows_land_as_uploaded_with_upload_id_file_row_number_and_receive_time(
    lake: tuple[Catalog, str],
) -> None:
    data = csv_of(ROW.format(n=1), ROW.format(n=2).replace("12.50", "oops"))
    result = upload(lake, data)
    assert (result.rows_total, result.rows_flagged, result.is_duplicate) == (2, 0, False)
    assert result.failing_by_rule == {"amount_valid": 1}
    assert result.rows_expected_valid == 1
    rows = sorted(
        lake[0].load_table(TRANSACTIONS_RAW.identifier).scan().to_arrow().to_pylist(),
        key=lambda r: r["row_number"],
    )
    assert [(r["upload_id"], r["file_name"], r["row_number"]) for r in rows] == [
        (result.upload_id, "day.csv", 1),
        (result.upload_id, "day.csv", 2),
    ]
    assert rows[1]["amount"] == "oops"
    assert rows[0]["received_at"] == RECEIVED
    assert set(TRANSACTIONS_RAW.column_names) == set(rows[0])


def test_the_same_content_again_is_a_no_op_that_says_so(lake: tuple[Catalog, str]) -> None:
    data = csv_of(ROW.format(n=1))
    first = upload(lake, data)
    again = upload(lake, data, file_name="day-copy.csv")
    assert again.is_duplicate
    assert (again.upload_id, again.rows_total) == (first.upload_id, 1)
    assert (first.file_name, first.first_file_name) == ("day.csv", None)
    assert (again.file_name, again.first_file_name) == ("day-copy.csv", "day.csv")
    raw = lake[0].load_table(TRANSACTIONS_RAW.identifier)
    assert raw.scan().to_arrow().num_rows == 1
    uploads = lake[0].load_table(TRANSACTIONS_UPLOADS.identifier).scan().to_arrow()
    assert uploads.column("content_sha256").to_pylist() == [first.content_sha256]


def test_a_repeat_reports_the_first_upload_s_issue_and_rule_counts(
    lake: tuple[Catalog, str],
) -> None:
    data = csv_of(
        ROW.format(n=1),
        ROW.format(n=2).replace("12.50", "oops"),
        ROW.format(n=3).replace("Corner Grocer", "=X(1)"),
        "tx4,acc1,only,three",
    )
    first = upload(lake, data)
    again = upload(lake, data)
    assert again.is_duplicate
    assert again.counts_known
    assert (
        (again.rows_total, again.rows_flagged) == (first.rows_total, first.rows_flagged) == (4, 1)
    )
    assert again.flagged_by_issue == first.flagged_by_issue == {"field count": 1}
    assert again.failing_by_rule == first.failing_by_rule
    assert set(first.failing_by_rule) == {"amount_valid", "formula_injection", "record_readable"}
    assert again.rows_expected_valid == first.rows_expected_valid == 1


def test_a_repeat_whose_bronze_rows_are_gone_says_its_counts_are_unknown(
    lake: tuple[Catalog, str],
) -> None:
    data = csv_of(ROW.format(n=1), ROW.format(n=2).replace("12.50", "oops"))
    first = upload(lake, data)
    lake[0].load_table(TRANSACTIONS_RAW.identifier).delete(
        EqualTo(term="upload_id", value=first.upload_id)
    )
    again = upload(lake, data)
    assert again.is_duplicate
    assert not again.counts_known
    assert (again.rows_total, again.failing_by_rule) == (2, {})


def test_the_same_bytes_read_with_another_encoding_are_a_new_upload(
    lake: tuple[Catalog, str],
) -> None:
    data = csv_of(ROW.format(n=1).replace("Corner", "Café")).replace(
        "Café".encode(), "Café".encode("cp1252")
    )
    as_utf8 = upload(lake, data)
    assert as_utf8.flagged_by_issue == {"encoding": 1}
    assert as_utf8.failing_by_rule == {"record_readable": 1}
    as_cp1252 = upload(lake, data, encoding="cp1252")
    assert not as_cp1252.is_duplicate
    assert as_cp1252.upload_id != as_utf8.upload_id
    assert (as_cp1252.rows_flagged, as_cp1252.failing_by_rule) == (0, {})


@pytest.mark.parametrize(
    ("encoded", "options"),
    [
        (csv_of(ROW.format(n=1)), {"encoding": "ascii"}),
        (csv_of(ROW.format(n=1)), {"encoding": "latin-1"}),
        (csv_of(ROW.format(n=1)), {"delimiter": ","}),
        (b"\xef\xbb\xbf" + csv_of(ROW.format(n=1)), {}),
        (csv_of(ROW.format(n=1)).decode().encode("utf-16"), {}),
    ],
)
def test_what_reads_as_the_same_text_again_is_a_repeat(
    lake: tuple[Catalog, str], encoded: bytes, options: dict[str, str]
) -> None:
    first = upload(lake, csv_of(ROW.format(n=1)))
    again = upload(lake, encoded, **options)
    assert again.is_duplicate
    assert again.upload_id == first.upload_id
    assert lake[0].load_table(TRANSACTIONS_RAW.identifier).scan().to_arrow().num_rows == 1


def test_an_upload_recorded_under_an_id_of_the_bytes_is_still_a_repeat(
    lake: tuple[Catalog, str],
) -> None:
    """Before ids came from the decoded text they came from the bytes, encoding and delimiter:
    the same file uploaded again after an upgrade finds its ledger row by those."""
    first = upload(lake, csv_of(ROW.format(n=1)))
    uploads = lake[0].load_table(TRANSACTIONS_UPLOADS.identifier)
    ledger = uploads.scan().to_arrow()
    older = ledger.set_column(
        ledger.schema.get_field_index("upload_id"), "upload_id", pa.array(["up-of-the-bytes"])
    )
    uploads.overwrite(older)
    again = upload(lake, csv_of(ROW.format(n=1)), file_name="copy.csv")
    assert (again.is_duplicate, again.upload_id) == (True, "up-of-the-bytes")
    assert (again.file_name, again.first_file_name) == ("copy.csv", "day.csv")
    assert first.upload_id != again.upload_id
    assert lake[0].load_table(TRANSACTIONS_RAW.identifier).scan().to_arrow().num_rows == 1


def test_records_the_file_garbles_are_kept_and_counted(lake: tuple[Catalog, str]) -> None:
    unclosed = ROW.format(n=3).replace("Corner", '"Corner')
    rows = [ROW.format(n=1), "tx2,acc1,only,three", unclosed, ROW.format(n=4), ROW.format(n=5)]
    result = upload(lake, csv_of(*rows))
    assert (result.rows_total, result.rows_flagged) == (5, 2)
    assert result.flagged_by_issue == {"field count": 1, "quoting": 1}
    assert result.failing_by_rule == {"record_readable": 2}
    assert result.rows_expected_valid == 3
    raw = lake[0].load_table(TRANSACTIONS_RAW.identifier).scan().to_arrow().to_pylist()
    garbled = sorted((row["row_number"], row["raw_record"]) for row in raw if row["upload_issue"])
    assert garbled == [(2, "tx2,acc1,only,three"), (3, unclosed)]


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (HEADER.encode() + b"\n", "no records"), (b"\x00\x01\x02", "binary")],
)
def test_unreadable_files_write_nothing(
    lake: tuple[Catalog, str], data: bytes, message: str
) -> None:
    with pytest.raises(UnreadableFileError, match=message):
        upload(lake, data)
    catalog = lake[0]
    if catalog.table_exists(TRANSACTIONS_RAW.identifier):
        assert catalog.load_table(TRANSACTIONS_RAW.identifier).scan().to_arrow().num_rows == 0
    if catalog.table_exists(TRANSACTIONS_UPLOADS.identifier):
        assert catalog.load_table(TRANSACTIONS_UPLOADS.identifier).scan().to_arrow().num_rows == 0


def test_an_upload_whose_ledger_row_was_lost_is_completed_without_new_bronze_rows(
    lake: tuple[Catalog, str],
) -> None:
    data = csv_of(ROW.format(n=1), ROW.format(n=2))
    first = upload(lake, data)
    catalog = lake[0]
    # Simulate a crash between the bronze commit and the ledger commit.
    catalog.load_table(TRANSACTIONS_UPLOADS.identifier).delete("upload_id IS NOT NULL")
    again = upload(lake, data)
    assert not again.is_duplicate
    assert again.upload_id == first.upload_id
    raw = catalog.load_table(TRANSACTIONS_RAW.identifier)
    assert raw.scan().to_arrow().num_rows == 2
    summaries = [s.summary for s in raw.snapshots() if s.summary is not None]
    assert [s.get(UPLOAD_PROPERTY) for s in summaries] == [first.upload_id]
    assert upload(lake, data).is_duplicate


def test_the_same_content_uploaded_twice_at_once_lands_once(tmp_path: Path) -> None:
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    data = csv_of(*(ROW.format(n=n) for n in range(1, 3001)))
    first, second = race_the_same_upload(lambda: open_lake(settings), data, "retried.csv")
    assert (first.is_duplicate, second.is_duplicate) == (False, True)
    assert second.upload_id == first.upload_id
    catalog, _ = open_lake(settings)
    assert catalog.load_table(TRANSACTIONS_RAW.identifier).scan().to_arrow().num_rows == 3000
    ledger = catalog.load_table(TRANSACTIONS_UPLOADS.identifier).scan().to_arrow()
    assert ledger.column("upload_id").to_pylist() == [first.upload_id]


def test_the_upload_id_depends_on_the_text_and_the_delimiter() -> None:
    assert upload_id_of("ab" * 32, ",") == upload_id_of("ab" * 32, ",")
    assert upload_id_of("ab" * 32, ",") != upload_id_of("cd" * 32, ",")
    assert upload_id_of("ab" * 32, ",") != upload_id_of("ab" * 32, ";")
