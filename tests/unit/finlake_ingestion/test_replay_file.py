from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finlake_ingestion.encoding import MarketTickEncoder
from finlake_ingestion.metrics import IngestionMetrics
from finlake_ingestion.replay_file import (
    ReplayFileError,
    parse_price,
    parse_timestamp,
    parse_volume,
)
from finlake_ingestion.sources.replay import ReplaySource

T0 = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)


def rows_of(path: Path) -> list:
    return list(ReplaySource(path, IngestionMetrics()).rows())


def write(tmp_path: Path, text: str, name: str = "ticks.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text",
    ["2026-11-24T14:30:00Z", "2026-11-24T15:30:00+01:00", "1795530600000", "2026-11-24 14:30:00Z"],
)
def test_timestamps_in_every_accepted_form(text: str) -> None:
    assert parse_timestamp(text, "f:2") == T0


def test_timestamp_keeps_milliseconds() -> None:
    assert parse_timestamp("1795530600123", "f:2").microsecond == 123000


@pytest.mark.parametrize("value", ["1795530600", 1795530600, 1795530600.0])
def test_epoch_seconds_are_refused_not_read_as_1970_milliseconds(value: object) -> None:
    with pytest.raises(
        ReplayFileError,
        match=r"f:4: timestamp '1795530600(\.0)?' looks like epoch seconds "
        r"\(2026-11-24T14:30:00Z\); as epoch milliseconds it would be 1970-01-21T18:45:30.600000Z",
    ):
        parse_timestamp(value, "f:4")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-24T14:30:00", "no UTC offset"),
        ("yesterday", "neither ISO-8601 nor epoch milliseconds"),
        ("", "empty"),
    ],
)
def test_bad_timestamps_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ReplayFileError, match=f"f:7: .*{message}"):
        parse_timestamp(text, "f:7")


@pytest.mark.parametrize(
    "text",
    [
        "99999999999999999",  # timedelta refuses it
        "253402300800000",  # 10000-01-01
        "-62135596800001",  # before 0001-01-01
        "9" * 5000,  # more digits than int() reads
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:30:00-01:00",
    ],
)
def test_timestamps_beyond_years_1_to_9999_name_the_line(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, f"symbol,timestamp,price,volume\nAAPL,1,1,1\nAAPL,{text},1,1\n")
    with pytest.raises(
        ReplayFileError, match=r"ticks.csv:3: timestamp '.*' is outside years 1-9999"
    ):
        rows_of(path)


def test_timestamps_at_the_edges_of_years_1_to_9999() -> None:
    assert parse_timestamp("-62135596800000", "f:2") == datetime(1, 1, 1, tzinfo=UTC)
    assert parse_timestamp(253402300799999, "f:2").year == 9999
    with pytest.raises(ReplayFileError, match="f:2: timestamp '10000000000000000000000000000000'"):
        parse_timestamp(10**31, "f:2")


def test_numbers() -> None:
    assert parse_price("", "f:2") is None
    assert parse_price("-1.5", "f:2") == -1.5
    assert parse_price(0, "f:2") == 0.0
    assert parse_volume("1200.0", "f:2") == 1200
    assert parse_volume(" ", "f:2") is None
    assert parse_volume(None, "f:2") is None
    for bad in ("abc", "nan", "inf"):
        with pytest.raises(ReplayFileError, match="f:2: price"):
            parse_price(bad, "f:2")
    for bad in ("12.5", "abc", "nan"):
        with pytest.raises(ReplayFileError, match="f:2: volume"):
            parse_volume(bad, "f:2")


def test_volumes_beyond_avro_long_are_refused_with_the_line(tmp_path: Path) -> None:
    # Avro's long is 64 bits: a bigger volume used to pass validation and fail mid-publish.
    edges = write(
        tmp_path,
        f"symbol,timestamp,price,volume\nAAPL,1,1,{2**63 - 1}\nAAPL,1,1,{-(2**63)}\n",
        "edges.csv",
    )
    rows = rows_of(edges)
    assert [row.tick.volume for row in rows] == [2**63 - 1, -(2**63)]
    for row in rows:  # the edges are still what Avro's long carries
        MarketTickEncoder(schema_id=1)(row.tick)
    for bad in (2**63, "-9223372036854775809", "1e30", "1e999999999", 1.5e30):
        with pytest.raises(ReplayFileError, match=r"f:2: volume .* does not fit a 64-bit integer"):
            parse_volume(bad, "f:2")
    path = write(
        tmp_path,
        "symbol,timestamp,price,volume\nAAPL,1795530600000,1,1\nAAPL,1795530600000,1,1e30\n",
    )
    with pytest.raises(ReplayFileError, match=r"ticks.csv:3: volume '1e30' does not fit"):
        rows_of(path)


def test_parquet_unsigned_volume_beyond_avro_long_is_refused(tmp_path: Path) -> None:
    table = pa.table(
        {
            "symbol": ["AAPL", "AAPL"],
            "timestamp": pa.array([T0, T0], type=pa.timestamp("ms", tz="UTC")),
            "price": [1.0, 1.0],
            "volume": pa.array([2**63 - 1, 2**64 - 1], type=pa.uint64()),
        }
    )
    path = tmp_path / "ticks.parquet"
    pq.write_table(table, path)
    with pytest.raises(ReplayFileError, match=r"row 2: volume 18446744073709551615 does not fit"):
        rows_of(path)


def test_a_price_beyond_the_double_range_is_refused() -> None:
    # float() of such an integer raises OverflowError; Avro's double cannot carry it either.
    with pytest.raises(ReplayFileError, match=r"f:2: price .* is not a finite number"):
        parse_price(10**400, "f:2")


def test_csv_rows_map_known_extras_and_keep_the_others_as_headers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "symbol,timestamp,price,volume,currency,exchange,bid,note\n"
        "AAPL,2026-11-24T14:30:00Z,234.5,100,USD,XNAS,234.4,\n"
        "MSFT,1795530660000,,,,,,halted\n"
        "IBM,2026-11-24T09:32:00-05:00,-1,0,USD,,,\n",
    )
    rows = rows_of(path)
    first, second, third = (row.tick for row in rows)
    assert (first.symbol, first.timestamp, first.price, first.volume) == ("AAPL", T0, 234.5, 100)
    assert (first.currency, first.exchange, first.source) == ("USD", "XNAS", "replay")
    assert rows[0].extras == [("finlake.extra.bid", b"234.4")]
    assert (second.price, second.volume, second.currency) == (None, None, None)
    assert rows[1].extras == [("finlake.extra.note", b"halted")]
    assert (third.price, third.volume, third.timestamp.minute) == (-1.0, 0, 32)
    assert rows[2].extras is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("symbol,timestamp,price\nAAPL,2026-11-24T14:30:00Z,1\n", ":1: missing column.*volume"),
        ("symbol,timestamp,price,volume\nAAPL,2026-11-24T14:30:00Z,x,1\n", ":2: price 'x'"),
        ("symbol,timestamp,price,volume\n,2026-11-24T14:30:00Z,1,1\n", ":2: symbol is empty"),
        ("symbol,timestamp,price,volume\nAAPL,2026-11-24T14:30:00Z,1\n", ":2: 3 fields"),
        ("", "empty file"),
        ("symbol,timestamp,price,volume\n" + "A" * 40 + ",1,1,1\n", ":2: symbol: String should"),
    ],
)
def test_malformed_csv_names_the_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ReplayFileError, match=message):
        rows_of(write(tmp_path, body))


HEADER = b"symbol,timestamp,price,volume,note\n"  # 35 bytes
GOOD = b"AAPL,1795530600000,1,1,ok\n"  # 26 bytes


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            HEADER + GOOD + "AAPL,1,1,1,Société\n".encode("cp1252"),
            ":3: byte 0xe9 at offset 76 is not UTF-8 (invalid continuation byte)",
        ),
        (
            HEADER + GOOD * 5000 + b"AAPL,1,1,1,\xff\n",  # after the first chunk decoded
            ":5002: byte 0xff at offset 130046 is not UTF-8 (invalid start byte)",
        ),
        (
            b"sym\xffbol,timestamp,price,volume\n" + GOOD,
            ":1: byte 0xff at offset 3 is not UTF-8",
        ),
        (
            HEADER.replace(b"\n", b"\r\n") + b"AAPL,1,1,1,a\rAAPL,1,1,1,\x80\r",
            ":3: byte 0x80 at offset 60 is not UTF-8",
        ),
        (
            HEADER + GOOD + b"AAPL,1,1,1,\xc3",
            ":3: byte 0xc3 at offset 72 is not UTF-8 (unexpected end of data)",
        ),
    ],
    ids=["cp1252", "after-the-first-decoded-chunk", "header", "cr-line-ends", "cut-at-the-end"],
)
def test_bytes_that_are_not_utf8_name_the_line(tmp_path: Path, body: bytes, message: str) -> None:
    path = tmp_path / "ticks.csv"
    path.write_bytes(body)
    with pytest.raises(ReplayFileError) as raised:
        rows_of(path)
    assert str(raised.value).startswith(f"{path}{message}")
    assert str(raised.value).endswith("; save the file as UTF-8")


@pytest.fixture
def small_csv_fields() -> Iterator[int]:
    # Process-wide, and another module of the process may have raised it: set it here.
    before = csv.field_size_limit(1000)
    yield 1000
    csv.field_size_limit(before)


def test_a_quote_left_open_names_the_line_it_opens(tmp_path: Path, small_csv_fields: int) -> None:
    rest = "".join(f"AAPL,1795530600000,1,1,n{n}\n" for n in range(small_csv_fields // 10))
    path = write(tmp_path, f'{HEADER.decode()}{GOOD.decode()}AAPL,1,1,1,"open\n{rest}')
    with pytest.raises(ReplayFileError) as raised:
        rows_of(path)
    assert str(raised.value) == (
        f"{path}:3: field larger than field limit ({small_csv_fields}) "
        "in the record starting on this line (a quote left open?)"
    )
    with pytest.raises(ReplayFileError, match=r"ticks.csv:1: field larger than field limit"):
        rows_of(write(tmp_path, "symbol,timestamp,price,volume," + "x" * (small_csv_fields + 1)))


def test_unknown_file_type_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReplayFileError, match="unknown file type"):
        rows_of(write(tmp_path, "x", "ticks.json"))
    with pytest.raises(ReplayFileError, match="no such file"):
        rows_of(tmp_path / "nope.csv")


def test_parquet_with_typed_and_string_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "symbol": ["AAPL", "MSFT"],
            "timestamp": pa.array([T0, T0], type=pa.timestamp("ms", tz="UTC")),
            "price": [234.5, None],
            "volume": pa.array([100, None], type=pa.int64()),
            "venue_note": ["a", None],
        }
    )
    path = tmp_path / "ticks.parquet"
    pq.write_table(table, path)
    rows = rows_of(path)
    assert [(r.tick.symbol, r.tick.timestamp, r.tick.price, r.tick.volume) for r in rows] == [
        ("AAPL", T0, 234.5, 100),
        ("MSFT", T0, None, None),
    ]
    assert rows[0].extras == [("finlake.extra.venue_note", b"a")]


def test_parquet_naive_timestamps_are_rejected_with_the_row(tmp_path: Path) -> None:
    table = pa.table(
        {
            "symbol": ["AAPL"],
            "timestamp": pa.array([T0.replace(tzinfo=None)], type=pa.timestamp("ms")),
            "price": [1.0],
            "volume": [1],
        }
    )
    path = tmp_path / "ticks.parquet"
    pq.write_table(table, path)
    with pytest.raises(ReplayFileError, match=r"row 1: timestamp .* has no UTC offset"):
        rows_of(path)


def test_parquet_timestamp_after_year_9999_names_the_row(tmp_path: Path) -> None:
    after_9999 = 300_000 * 365 * 86_400 * 1000
    table = pa.table(
        {
            "symbol": ["AAPL", "AAPL"],
            "timestamp": pa.array([0, after_9999], type=pa.timestamp("ms", tz="UTC")),
            "price": [1.0, 1.0],
            "volume": [1, 1],
        }
    )
    path = tmp_path / "ticks.parquet"
    pq.write_table(table, path)
    with pytest.raises(ReplayFileError, match="row 2: timestamp cannot be read: date value out"):
        rows_of(path)


def test_not_a_parquet_file(tmp_path: Path) -> None:
    with pytest.raises(ReplayFileError, match="not a readable Parquet file"):
        rows_of(write(tmp_path, "garbage", "ticks.parquet"))


def damaged(path: Path, start: int, length: int) -> None:
    data = bytearray(path.read_bytes())
    data[start : start + length] = bytes(byte ^ 0x5A for byte in data[start : start + length])
    path.write_bytes(bytes(data))


def test_a_damaged_parquet_page_is_one_line_naming_the_rows_read(tmp_path: Path) -> None:
    count = 30_000
    table = pa.table(
        {
            "symbol": ["AAPL"] * count,
            "timestamp": pa.array(range(count), type=pa.timestamp("ms", tz="UTC")),
            "price": [1.0] * count,
            "volume": list(range(count)),
        }
    )
    path = tmp_path / "ticks.parquet"
    pq.write_table(table, path, row_group_size=10_000)
    damaged(path, pq.ParquetFile(path).metadata.row_group(2).column(0).data_page_offset, 64)
    with pytest.raises(ReplayFileError) as raised:
        rows_of(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: after row 20000: not a readable Parquet file: ")
    assert "\n" not in message


def test_a_damaged_parquet_footer_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ticks.parquet"
    pq.write_table(
        pa.table({"symbol": ["AAPL"], "timestamp": [1], "price": [1.0], "volume": [1]}), path
    )
    damaged(path, path.stat().st_size - 16, 8)  # the end of the metadata, before its length
    with pytest.raises(ReplayFileError) as raised:
        rows_of(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: not a readable Parquet file: ")
    assert "\n" not in message


def test_a_csv_saved_as_utf8_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text("symbol,timestamp,price,volume\nAAPL,1795530600000,1.5,10\n", "utf-8-sig")
    assert [(r.tick.symbol, r.tick.timestamp) for r in rows_of(path)] == [("AAPL", T0)]


def parquet_timestamps(tmp_path: Path, timestamps: pa.Array) -> Path:
    rows = len(timestamps)
    table = pa.table(
        {
            "symbol": ["AAPL"] * rows,
            "timestamp": timestamps,
            "price": [1.0] * rows,
            "volume": [1] * rows,
        }
    )
    path = tmp_path / "ticks.parquet"
    pq.write_table(table, path)
    return path


def test_parquet_epoch_milliseconds_stored_as_whole_doubles_are_read(tmp_path: Path) -> None:
    path = parquet_timestamps(tmp_path, pa.array([1795530600000.0, 1795530600123.0]))
    assert [r.tick.timestamp for r in rows_of(path)] == [
        T0,
        T0.replace(microsecond=123000),
    ]


def test_parquet_doubles_with_a_fraction_of_a_millisecond_are_refused(tmp_path: Path) -> None:
    path = parquet_timestamps(tmp_path, pa.array([1795530600000.0, 1795530600000.5]))
    with pytest.raises(
        ReplayFileError,
        match=r"row 2: timestamp 1795530600000.5 is a float but not whole epoch milliseconds; "
        "expected ISO-8601 text",
    ):
        rows_of(path)


def test_parquet_dates_without_a_time_of_day_name_their_type(tmp_path: Path) -> None:
    path = parquet_timestamps(tmp_path, pa.array([T0.date()], type=pa.date32()))
    with pytest.raises(
        ReplayFileError,
        match=r"row 1: timestamp 2026-11-24 is a date; expected ISO-8601 text with Z or an offset, "
        "epoch milliseconds as a whole number, or a timestamp with a time zone",
    ):
        rows_of(path)
