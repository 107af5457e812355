"""Reading uploaded CSVs: what cannot be read is one clear error, every readable record is kept."""

from __future__ import annotations

import io
from typing import Any

import pytest

from finlake.transactions.csv_input import (
    MAX_FIELD_CHARS,
    UnreadableFileError,
    read_batches,
    read_layout,
)
from finlake.transactions.rules import TEXT_COLUMNS

HEADER = ",".join(TEXT_COLUMNS)
ROW = "tx1,acc1,card1,2026-05-01T10:00:00Z,12.50,EUR,Corner Grocer,5411,DE,pos,chip,approved,false"


def read(data: bytes, **options: Any) -> list[dict[str, Any]]:
    stream = io.BytesIO(data)
    layout = read_layout(stream, options.get("encoding"), options.get("delimiter"))
    return [row for batch in read_batches(stream, layout) for row in batch.to_pylist()]


def test_a_clean_file_is_read_record_by_record_with_row_numbers() -> None:
    rows = read(f"{HEADER}\n{ROW}\n{ROW.replace('tx1', 'tx2')}\n".encode())
    assert [(r["row_number"], r["transaction_id"], r["upload_issue"]) for r in rows] == [
        (1, "tx1", None),
        (2, "tx2", None),
    ]
    assert rows[0]["amount"] == "12.50"
    assert rows[0]["merchant"] == "Corner Grocer"


def test_columns_are_matched_by_name_and_optional_ones_may_be_missing() -> None:
    header = "amount,transaction_id,account_id,timestamp,currency,merchant,merchant_category,"
    header += "country,channel"
    row = "9.99,tx9,acc9,2026-05-01T10:00:00Z,EUR,Shop,5411,DE,pos"
    [record] = read(f"{header}\n{row}\n".encode())
    assert (record["transaction_id"], record["amount"], record["card_id"]) == ("tx9", "9.99", None)


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_another_delimiter_is_detected(delimiter: str) -> None:
    stream = io.BytesIO(f"{HEADER}\n{ROW}\n".replace(",", delimiter).encode())
    layout = read_layout(stream, None, None)
    assert layout.delimiter == delimiter
    [record] = [r for b in read_batches(stream, layout) for r in b.to_pylist()]
    assert record["merchant"] == "Corner Grocer"


def test_a_header_with_an_unknown_delimiter_is_a_clear_error() -> None:
    with pytest.raises(UnreadableFileError, match="no known delimiter"):
        read(f"{HEADER}\n{ROW}\n".replace(",", "#").encode())


def test_a_wrong_header_names_what_is_missing_and_unknown() -> None:
    with pytest.raises(UnreadableFileError, match=r"missing column\(s\) account_id.*'acct'"):
        read(f"{HEADER.replace('account_id', 'acct')}\n{ROW}\n".encode())


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (b"\xef\xbb\xbf" + f"{HEADER}\n{ROW}\n".encode(), "utf-8-sig"),
        (f"{HEADER}\n{ROW}\n".encode("utf-16"), "utf-16"),
    ],
)
def test_a_byte_order_mark_sets_the_encoding(encoded: bytes, encoding: str) -> None:
    layout = read_layout(io.BytesIO(encoded), None, None)
    assert layout.encoding == encoding
    [record] = read(encoded)
    assert record["transaction_id"] == "tx1"


def test_bytes_not_valid_utf8_flag_the_record_and_stay_visible() -> None:
    data = f"{HEADER}\n{ROW}\n".encode() + ROW.replace("Corner", "Caf\xe9").encode("cp1252")
    clean, garbled = read(data + b"\n")
    assert clean["upload_issue"] is None
    assert garbled["upload_issue"].startswith("encoding: bytes not valid in utf-8")
    assert garbled["merchant"] == "Caf\\xe9 Grocer"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_broken_multibyte_tail_flags_its_record_and_keeps_the_rest(encoding: str) -> None:
    # An odd byte at the end of UTF-16 (or a stray one in UTF-32) is below 0x80: Python's
    # surrogateescape cannot carry it and used to raise UnicodeDecodeError out of the upload.
    data = f"{HEADER}\n{ROW}\n{ROW.replace('tx1', 'tx2')}".encode(encoding) + b"\x41"
    clean, flagged = read(data)
    assert (clean["transaction_id"], clean["upload_issue"]) == ("tx1", None)
    assert flagged["transaction_id"] == "tx2"
    assert flagged["upload_issue"].startswith(f"encoding: bytes not valid in {encoding}")
    assert flagged["is_fraud"] == "false\\x41"


def test_the_right_encoding_reads_the_same_bytes_cleanly() -> None:
    data = f"{HEADER}\n{ROW.replace('Corner', 'Café')}\n".encode("cp1252")
    [record] = read(data, encoding="cp1252")
    assert (record["merchant"], record["upload_issue"]) == ("Café Grocer", None)


def test_quoted_newlines_stay_inside_their_field() -> None:
    quoted = ROW.replace("Corner Grocer", '"Corner\nGrocer"')
    rows = read(f"{HEADER}\n{quoted}\n{ROW.replace('tx1', 'tx2')}\n".encode())
    assert [(r["row_number"], r["transaction_id"]) for r in rows] == [(1, "tx1"), (2, "tx2")]
    assert rows[0]["merchant"] == "Corner\nGrocer"


def test_a_record_with_the_wrong_field_count_is_kept_whole_with_the_reason() -> None:
    short = ROW.rsplit(",", 2)[0]
    [record] = read(f"{HEADER}\n{short}\n".encode())
    assert record["upload_issue"] == "field count: 11 fields, the header has 13"
    assert record["raw_record"] == short
    assert record["transaction_id"] is None


def test_a_garbled_record_keeps_its_text_as_uploaded_quotes_and_line_breaks_included() -> None:
    quoted = ROW.replace("Corner Grocer", '"Corner, Grocer",extra')
    multiline = ROW.replace("tx1", "tx2").replace("Corner Grocer", '"Corner;\r\nGrocer",extra')
    rows = read(f"{HEADER}\r\n{quoted}\r\n{multiline}\r\n".encode())
    assert [r["upload_issue"] for r in rows] == ["field count: 14 fields, the header has 13"] * 2
    assert [r["raw_record"] for r in rows] == [quoted, multiline]


def test_text_after_a_closing_quote_flags_the_record_instead_of_changing_the_value() -> None:
    stray = ROW.replace("tx1", "tx2").replace("Corner Grocer", '"Corner" Grocer')
    rows = read(f"{HEADER}\n{ROW}\n{stray}\n{ROW.replace('tx1', 'tx3')}\n".encode())
    assert [(r["row_number"], r["transaction_id"]) for r in rows] == [
        (1, "tx1"),
        (2, None),
        (3, "tx3"),
    ]
    assert rows[1]["upload_issue"] == (
        "quoting: line 3 breaks the CSV quoting rules (',' expected after '\"')"
    )
    assert rows[1]["raw_record"] == stray


@pytest.mark.parametrize("value", ["Corner Grocer", "false"])  # the merchant, the last field
def test_an_unclosed_quote_flags_its_line_and_the_lines_after_it_are_records(value: str) -> None:
    stray = ROW.replace("tx1", "tx2").replace(value, f'"{value}')
    after = [ROW.replace("tx1", f"tx{n}") for n in (3, 4, 5)]
    rows = read("\n".join([HEADER, ROW, "", stray, *after]).encode())
    assert [(r["row_number"], r["transaction_id"]) for r in rows] == [
        (1, "tx1"),
        (2, None),
        (3, "tx3"),
        (4, "tx4"),
        (5, "tx5"),
    ]
    assert rows[1]["upload_issue"] == "quoting: the quote opened on line 4 is never closed"
    assert rows[1]["raw_record"] == stray
    assert [r["upload_issue"] for r in rows[2:]] == [None] * 3


def test_bytes_not_valid_in_a_record_that_breaks_the_quoting_stay_visible_in_its_text() -> None:
    stray = ROW.replace("Corner Grocer", '"Caf\xe9" Grocer').encode("cp1252")
    [record] = read(f"{HEADER}\n".encode() + stray + b"\n")
    assert record["upload_issue"].startswith("quoting: line 2 breaks the CSV quoting rules")
    assert "; encoding: bytes not valid in utf-8" in record["upload_issue"]
    assert record["raw_record"] == ROW.replace("Corner Grocer", '"Caf\\xe9" Grocer')


def test_formula_text_is_read_as_is_for_the_rules_to_judge() -> None:
    formula = '"=HYPERLINK(""http://evil.example"",""x"")"'
    [record] = read(f"{HEADER}\n{ROW.replace('Corner Grocer', formula)}\n".encode())
    assert record["merchant"] == '=HYPERLINK("http://evil.example","x")'


def test_a_long_field_is_read_but_an_open_quote_stops_at_the_field_limit() -> None:
    long_name = "A" * 5000
    [record] = read(f"{HEADER}\n{ROW.replace('Corner Grocer', long_name)}\n".encode())
    assert record["merchant"] == long_name
    # A quoted field of several MiB is a value (the field_lengths rule quarantines it).
    huge = '"' + "B" * (3 << 20) + '"'
    [record] = read(f"{HEADER}\n{ROW.replace('Corner Grocer', huge)}\n".encode())
    assert record["merchant"] == huge.strip('"')
    stray = ROW.replace("Corner", '"Corner')
    filler = ["x" * 1000] * (MAX_FIELD_CHARS // 1000 + 1)
    rows = read("\n".join([HEADER, stray, *filler, ROW.replace("tx1", "tx2")]).encode())
    assert rows[0]["upload_issue"].startswith(
        "quoting: line 2 breaks the CSV quoting rules (field larger than field limit"
    )
    assert rows[0]["raw_record"] == stray
    assert len(rows) == 1 + len(filler) + 1
    assert {r["raw_record"] for r in rows[1:-1]} == {filler[0]}
    assert (rows[-1]["transaction_id"], rows[-1]["upload_issue"]) == ("tx2", None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n  \n", "the file is empty"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00binary", "looks binary"),
        (bytes(range(256)) * 4, "looks binary"),
    ],
)
def test_what_cannot_be_read_at_all_is_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(UnreadableFileError, match=message) as raised:
        read(data)
    assert "UTF-16" not in str(raised.value)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_named_in_the_error(encoding: str) -> None:
    data = f"{HEADER}\n{ROW.replace('Corner', 'Cöner')}\n".encode(encoding)
    hint = f"looks binary.*like {encoding.upper()} text.*naming the file's encoding, {encoding}$"
    with pytest.raises(UnreadableFileError, match=hint):
        read(data)
    [record] = read(data, encoding=encoding)
    assert (record["merchant"], record["upload_issue"]) == ("Cöner Grocer", None)


def test_blank_lines_are_no_records() -> None:
    rows = read(f"{HEADER}\n\n{ROW}\n\n".encode())
    assert [r["row_number"] for r in rows] == [1]


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("no-such-encoding", "unknown text encoding 'no-such-encoding'"),
        ("utf\x008", "unknown text encoding 'utf\\\\x008'"),
        ("rot13", "'rot13' is a codec but not a text encoding"),
        ("hex", "'hex' is a codec but not a text encoding"),
        ("bz2_codec", "not a text encoding"),
        ("idna", "text encoding 'idna' cannot read a CSV file"),
        ("punycode", "text encoding 'punycode' cannot read a CSV file"),
        ("undefined", "text encoding 'undefined' cannot read a CSV file"),
    ],
)
def test_an_encoding_that_cannot_read_text_is_one_clear_error(encoding: str, message: str) -> None:
    for data in (f"{HEADER}\n{ROW}\n".encode(), f"{HEADER}\n{ROW}\n".encode("utf-16")):
        with pytest.raises(UnreadableFileError, match=message):
            read(data, encoding=encoding)


@pytest.mark.parametrize("encoding", ["utf_8_sig", "latin-1", "utf-16-le", "unicode_escape"])
def test_text_encodings_by_any_of_their_names_are_read(encoding: str) -> None:
    [record] = read(f"{HEADER}\n{ROW}\n".encode(encoding), encoding=encoding)
    assert (record["transaction_id"], record["upload_issue"]) == ("tx1", None)
