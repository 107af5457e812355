"""Reading replay files (CSV or Parquet of ticks): parsing and validation, one row at a time."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from finlake.contracts.models import MarketTick
from finlake.errors import ConfigurationError
from finlake_ingestion.sources.base import Headers

if TYPE_CHECKING:
    import pyarrow as pa

REQUIRED = ("symbol", "timestamp", "price", "volume")
MAPPED = (*REQUIRED, "currency", "exchange")
EXTRA_HEADER_PREFIX = "finlake.extra."
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTEGER = re.compile(r"^[+-]?\d+$")
# Whole numbers read as epoch milliseconds in 1970-01-12..1973-03-03 are epoch seconds of
# 2001-09-09..5138-11-16 far more likely than ticks of the early 1970s: refused, not misread.
_SECONDS_LIKE = (10**9, 10**11)
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1  # Avro's long, the wire type of volume
# Excel's "CSV UTF-8" starts the file with a byte order mark; it is not part of the first name.
_CSV_ENCODING = "utf-8-sig"
_TIMESTAMP_FORMS = (
    "expected ISO-8601 text with Z or an offset, epoch milliseconds as a whole number, "
    "or a timestamp with a time zone"
)


class ReplayFileError(ConfigurationError):
    """A replay file is malformed; the message names the file, the line and the value."""


@dataclass(frozen=True)
class ReplayRow:
    """One parsed row: the tick and the values of the columns the contract has no field for."""

    tick: MarketTick
    extras: Headers | None


@dataclass
class ReplaySummary:
    """What validation found: row count, extra columns, event-time span."""

    rows: int = 0
    extra_columns: tuple[str, ...] = ()
    first: datetime | None = None
    last: datetime | None = None
    extra_values: dict[str, int] = field(default_factory=dict)


def file_format(path: Path) -> str:
    """``csv`` or ``parquet``, from the file name."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ReplayFileError(f"{path}: unknown file type {suffix!r}; use .csv or .parquet")


def read_columns(path: Path) -> list[str]:
    """The file's column names; ReplayFileError when a required one is missing."""
    if not path.is_file():
        raise ReplayFileError(f"{path}: no such file")
    if file_format(path) == "csv":
        with path.open(newline="", encoding=_CSV_ENCODING) as handle:
            try:
                header = next(csv.reader(handle), None)
            except UnicodeDecodeError:  # decoding runs ahead: the bad byte may be further down
                raise _not_utf8(path) from None
            except csv.Error as error:
                raise ReplayFileError(f"{path}:1: {error}") from None
        if header is None:
            raise ReplayFileError(f"{path}: empty file, expected a header line")
        columns = [name.strip() for name in header]
    else:
        import pyarrow.parquet as pq

        try:
            columns = list(pq.read_schema(path).names)
        except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
            raise ReplayFileError(
                f"{path}: not a readable Parquet file: {_one_line(error)}"
            ) from error
    _check_columns(path, columns)
    return columns


def iter_rows(path: Path, columns: list[str]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, raw values) for every data row; the file is open only while iterating."""
    if file_format(path) == "csv":
        yield from _csv_rows(path, columns)
    else:
        yield from _parquet_rows(path)


def _csv_rows(path: Path, columns: list[str]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    with path.open(newline="", encoding=_CSV_ENCODING) as handle:
        reader = csv.reader(handle)
        read = 0
        try:
            next(reader, None)
            read = reader.line_num
            for values in reader:
                read = reader.line_num
                where = f"{path}:{read}"
                if not values:
                    continue
                if len(values) != len(columns):
                    raise ReplayFileError(
                        f"{where}: {len(values)} fields, the header has {len(columns)}"
                    )
                yield where, dict(zip(columns, values, strict=True))
        except UnicodeDecodeError:  # raised for a chunk read ahead: find the line in the bytes
            raise _not_utf8(path) from None
        except csv.Error as error:  # e.g. a quote left open runs past the field size limit
            raise ReplayFileError(
                f"{path}:{read + 1}: {error} in the record starting on this line "
                "(a quote left open?)"
            ) from None


def _not_utf8(path: Path) -> ReplayFileError:
    """The error naming the line and byte offset of the first byte that is not UTF-8."""
    line_number, offset = 1, 0
    with path.open("rb") as handle:
        for line in handle:  # a line ends at b"\n", which is never part of a UTF-8 sequence
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                # Counted as csv counts lines (\r, \n or \r\n), up to the bad byte.
                line_number += len((line[: error.start] + b".").splitlines()) - 1
                return ReplayFileError(
                    f"{path}:{line_number}: byte 0x{line[error.start]:02x} at offset "
                    f"{offset + error.start} is not UTF-8 ({error.reason}); save the file as UTF-8"
                )
            line_number += len(line.splitlines())
            offset += len(line)
    return ReplayFileError(f"{path}: not UTF-8; save the file as UTF-8")


def _parquet_rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    import pyarrow.parquet as pq

    number = 0
    with pq.ParquetFile(path) as source:
        chunks = source.iter_batches(batch_size=10_000)
        while (chunk := _next_chunk(path, chunks, number)) is not None:
            try:
                rows = chunk.to_pylist()
            except (OverflowError, ValueError) as error:  # e.g. a timestamp after year 9999
                raise _unreadable_value(path, chunk, number, error) from None
            for values in rows:
                number += 1
                yield f"{path}: row {number}", values


def _next_chunk(path: Path, chunks: Iterator[pa.RecordBatch], before: int) -> pa.RecordBatch | None:
    try:
        return next(chunks, None)
    except Exception as error:  # a damaged page: pyarrow raises OSError, ArrowInvalid, ...
        where = f"{path}: after row {before}" if before else str(path)
        raise ReplayFileError(
            f"{where}: not a readable Parquet file: {_one_line(error)}"
        ) from error


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())  # pyarrow's thrift messages end in a newline


def _unreadable_value(
    path: Path, chunk: pa.RecordBatch, before: int, error: Exception
) -> ReplayFileError:
    """The error naming the first row and column of ``chunk`` that Python cannot hold."""
    for index in range(chunk.num_rows):
        for name, column in zip(chunk.schema.names, chunk.columns, strict=True):
            try:
                column[index].as_py()
            except (OverflowError, ValueError) as problem:
                return ReplayFileError(
                    f"{path}: row {before + index + 1}: {name} cannot be read: {problem}"
                )
    return ReplayFileError(f"{path}: rows {before + 1}-{before + chunk.num_rows}: {error}")


def _check_columns(path: Path, columns: list[str]) -> None:
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise ReplayFileError(
            f"{path}:1: missing column(s) {', '.join(missing)}; "
            f"required: {','.join(REQUIRED)} (found: {','.join(columns)})"
        )


def parse_timestamp(value: Any, where: str) -> datetime:
    """ISO-8601 with ``Z`` or an offset, or whole epoch milliseconds, as a UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    elif (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and _INTEGER.match(value.strip())
    ):
        return _from_epoch_millis(value, where)
    elif isinstance(value, float):
        return _from_float_millis(value, where)
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ReplayFileError(
                f"{where}: timestamp {value!r} is neither ISO-8601 nor epoch milliseconds"
            ) from None
    elif value is None or isinstance(value, str):
        raise ReplayFileError(f"{where}: timestamp is empty")
    else:  # e.g. a Parquet date32 (no time of day), a bool or a decimal
        raise ReplayFileError(
            f"{where}: timestamp {value} is a {type(value).__name__}; {_TIMESTAMP_FORMS}"
        )
    if moment.tzinfo is None:
        raise ReplayFileError(
            f"{where}: timestamp {str(value)!r} has no UTC offset; add Z or e.g. +02:00"
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise _out_of_range(value, where) from None


def _from_epoch_millis(value: int | str, where: str) -> datetime:
    try:
        millis = int(value)
        moment = _EPOCH + timedelta(milliseconds=millis)
    except (OverflowError, ValueError):  # after year 9999, or more digits than int() reads
        raise _out_of_range(value, where) from None
    if _SECONDS_LIKE[0] <= millis < _SECONDS_LIKE[1]:
        seconds = _EPOCH + timedelta(seconds=millis)
        raise ReplayFileError(
            f"{where}: timestamp {str(value)!r} looks like epoch seconds "
            f"({seconds:%Y-%m-%dT%H:%M:%SZ}); as epoch milliseconds it would be "
            f"{moment:%Y-%m-%dT%H:%M:%S.%fZ}. Give epoch milliseconds (seconds x 1000) or "
            "ISO-8601 text"
        )
    return moment


def _from_float_millis(value: float, where: str) -> datetime:
    # Parquet writers (pandas, Spark) often store epoch milliseconds as a double. Every whole
    # number of milliseconds in years 1-9999 fits a double exactly, so a whole one loses nothing.
    if not value.is_integer():
        raise ReplayFileError(
            f"{where}: timestamp {value!r} is a float but not whole epoch milliseconds; "
            f"{_TIMESTAMP_FORMS}"
        )
    return _from_epoch_millis(int(value), where)


def _out_of_range(value: Any, where: str) -> ReplayFileError:
    return ReplayFileError(f"{where}: timestamp {str(value)!r} is outside years 1-9999 in UTC")


def parse_price(value: Any, where: str) -> float | None:
    """A finite double, or None for an empty cell; non-positive prices pass (bronze is as-is)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ReplayFileError(f"{where}: price {value!r} is not a number") from None
    except OverflowError:  # an integer beyond the double range, which Avro cannot carry
        raise ReplayFileError(f"{where}: price {value!r} is not a finite number") from None
    if not math.isfinite(number):
        raise ReplayFileError(f"{where}: price {value!r} is not a finite number")
    return number


def parse_volume(value: Any, where: str) -> int | None:
    """A whole number (``1200`` or ``1200.0``) in the 64-bit range, or None for an empty cell."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: int | Decimal
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        try:
            number = Decimal(value.strip() if isinstance(value, str) else str(value))
        except ArithmeticError:
            raise ReplayFileError(f"{where}: volume {value!r} is not a number") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise ReplayFileError(f"{where}: volume {value!r} is not a whole number")
    # Checked before int(): ``1e999999999`` would be a huge int, and a long cannot carry it.
    if not _LONG_MIN <= number <= _LONG_MAX:
        raise ReplayFileError(f"{where}: volume {value!r} does not fit a 64-bit integer")
    return int(number)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_row(
    values: Mapping[str, Any], where: str, produced_at: datetime, extra_columns: tuple[str, ...]
) -> ReplayRow:
    """One raw row as a tick plus its extra values; ReplayFileError names the line."""
    symbol = _text(values["symbol"])
    if symbol is None:
        raise ReplayFileError(f"{where}: symbol is empty")
    try:
        tick = MarketTick(
            symbol=symbol,
            timestamp=parse_timestamp(values["timestamp"], where),
            price=parse_price(values["price"], where),
            volume=parse_volume(values["volume"], where),
            currency=_text(values.get("currency")),
            exchange=_text(values.get("exchange")),
            source="replay",
            produced_at=produced_at,
        )
    except ValidationError as error:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors())
        raise ReplayFileError(f"{where}: {problems}") from None
    extras: Headers = []
    for column in extra_columns:
        text = _text(values.get(column))
        if text is not None:
            extras.append((EXTRA_HEADER_PREFIX + column, text.encode()))
    return ReplayRow(tick, extras or None)
