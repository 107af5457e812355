"""Reading uploaded transaction CSVs: encoding, delimiter, header, then record by record.

What cannot be read at all (empty or binary file, unknown header) raises
:class:`UnreadableFileError` with one line that says why. Everything else is read: a record that
does not fit the header, breaks the quoting rules, or holds bytes that are not valid in the file's
encoding, is still returned, with ``upload_issue`` saying why and its text as uploaded, so that the
batch quarantines it and nothing is lost. Values are never changed here: bronze stores them as
uploaded.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa

from finlake.errors import ContractViolation
from finlake.transactions.rules import REQUIRED_COLUMNS, TEXT_COLUMNS

DELIMITERS = (",", ";", "\t", "|")
MAX_FIELD_CHARS = 16 << 20
"""A field longer than this is taken as a broken record (an unclosed quote), not as a value. Shorter
huge fields are read as they are and quarantined by the ``field_lengths`` rule."""
SNIFF_BYTES = 64 * 1024
ISSUE_FIELD_COUNT = "field count"
ISSUE_ENCODING = "encoding"
ISSUE_QUOTING = "quoting"
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
RECORD_SCHEMA = pa.schema(
    [("row_number", pa.int64())]
    + [(name, pa.string()) for name in TEXT_COLUMNS]
    + [("upload_issue", pa.string()), ("raw_record", pa.string())]
)
"""What :func:`read_batches` yields: bronze's columns that come from the file itself."""
# Process-wide; csv's default (128 KiB) would reject fields the rules should quarantine instead.
csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
# Undecodable bytes survive decoding as lone surrogates, one per byte: Python's surrogateescape
# does so only for bytes from 0x80 (it would fail on an odd trailing byte of UTF-16, or a stray
# byte in UTF-32), this handler for every byte. Text decoded cleanly never holds a lone surrogate.
_ESCAPE_ERRORS = "finlake-escape-bytes"
_ESCAPED_BYTE = re.compile("[\udc00-\udcff]")


def _escape_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    undecodable = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + byte) for byte in undecodable), error.end


codecs.register_error(_ESCAPE_ERRORS, _escape_undecodable)


class UnreadableFileError(ContractViolation):
    """An uploaded file cannot be read as a transactions CSV at all."""


@dataclass(frozen=True)
class CsvLayout:
    """How a file is to be read: encoding, delimiter, and which contract column each field is."""

    encoding: str
    delimiter: str
    columns: tuple[str, ...]


def detect_encoding(head: bytes, encoding: str | None = None) -> str:
    """The file's encoding: a BOM wins, then ``encoding`` if given, else UTF-8."""
    # A named encoding is checked even when a BOM overrides it: a bad parameter is an error.
    named = None if encoding is None else text_encoding(encoding)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    if not head:
        raise UnreadableFileError("the file is empty")
    if named is None:
        if b"\x00" in head:
            raise _binary_file_error(head)
        return "utf-8"
    return named


def _binary_file_error(head: bytes) -> UnreadableFileError:
    """The error for a file with NUL bytes; it names UTF-16 when they alternate like its text."""
    offset = head.index(b"\x00")
    message = f"the file looks binary (a NUL byte at offset {offset}), not a CSV text file"
    # Latin text in UTF-16 (the header, at least) has a NUL as every other byte: second in
    # little-endian, first in big-endian. Binary data has NULs at odd and even offsets alike.
    for first_nul, name in ((1, "utf-16-le"), (0, "utf-16-be")):
        nul_side, text_side = head[first_nul::2], head[1 - first_nul :: 2]
        if nul_side.count(0) * 2 > len(nul_side) and text_side.count(0) * 10 < len(text_side):
            message += (
                f"; its NUL bytes alternate like {name.upper()} text without a byte order mark: "
                f"upload again naming the file's encoding, {name}"
            )
    return UnreadableFileError(message)


def text_encoding(encoding: str) -> str:
    """The codec name of ``encoding``, if it decodes bytes to text the ways an upload needs.

    ``b"".decode(encoding)`` proves little: rot13 and hex are codecs but not from bytes to text,
    and idna or punycode refuse the error handlers the reading uses ("replace" for the header,
    the byte-escaping one for the records). Each would only fail later, as a traceback.
    """
    try:
        info = codecs.lookup(encoding)
    except (LookupError, ValueError) as error:  # ValueError: a name with a NUL character
        raise UnreadableFileError(f"unknown text encoding {encoding!r}") from error
    if not info._is_text_encoding:
        raise UnreadableFileError(
            f"{encoding!r} is a codec but not a text encoding; name the file's text encoding, "
            "e.g. utf-8 or cp1252"
        )
    for errors in ("strict", "replace", _ESCAPE_ERRORS):
        try:
            codecs.getincrementaldecoder(info.name)(errors=errors).decode(b"a")
        except (ValueError, LookupError, TypeError) as error:  # UnicodeError is a ValueError
            raise UnreadableFileError(
                f"text encoding {encoding!r} cannot read a CSV file ({error}); name the file's "
                "text encoding, e.g. utf-8 or cp1252"
            ) from error
    return info.name


def _normalise(name: str) -> str:
    return name.strip().strip("\ufeff").strip().lower()


def parse_header(line: str, delimiter: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The delimiter and the contract column of each header field (in file order)."""
    if delimiter is not None and (
        len(delimiter) != 1
        or delimiter in '"\r\n'
        or not (delimiter.isprintable() or delimiter == "\t")
    ):
        raise UnreadableFileError(f"delimiter {delimiter!r} is not a single field separator")
    candidates = (delimiter,) if delimiter else DELIMITERS
    best: tuple[str, tuple[str, ...]] | None = None
    for candidate in candidates:
        fields = next(csv.reader([line], delimiter=candidate), [])
        names = tuple(_normalise(field) for field in fields)
        if set(REQUIRED_COLUMNS) <= set(names):
            best = (candidate, names)
            break
        if best is None or len(names) > len(best[1]):
            best = (candidate, names)
    assert best is not None
    chosen, names = best
    if not any(names):
        raise UnreadableFileError("the first line (the header) is empty")
    if len(names) == 1 and delimiter is None:
        shown = line.strip()[:80]
        raise UnreadableFileError(
            f"the header {shown!r} has no known delimiter (, ; tab |) between the expected "
            f"columns {', '.join(REQUIRED_COLUMNS)}"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    unknown = [name for name in names if name not in TEXT_COLUMNS]
    repeated = sorted({name for name in names if names.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(repr(name) for name in unknown[:5])}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if problems:
        raise UnreadableFileError(
            f"wrong header ({'; '.join(problems)}); expected the columns "
            f"{', '.join(TEXT_COLUMNS)} separated by {chosen!r}"
        )
    return chosen, names


def _escaped_bytes(text: str) -> str:
    return _ESCAPED_BYTE.sub(lambda byte: f"\\x{ord(byte.group()) - 0xDC00:02x}", text)


@dataclass
class _Batch:
    """Records gathered for one Arrow batch; problems are sparse (by index in the batch)."""

    numbers: list[int] = field(default_factory=list)
    rows: list[list[str] | None] = field(default_factory=list)
    issues: dict[int, str] = field(default_factory=dict)
    raw_records: dict[int, str] = field(default_factory=dict)

    def add(
        self,
        number: int,
        fields: list[str] | None,
        lines: list[str],
        layout: CsvLayout,
        *,
        check_bytes: bool,
        problem: str | None = None,
    ) -> None:
        """One record read from ``lines``; ``fields`` None: it has none (``problem`` says why)."""
        index = len(self.rows)
        self.numbers.append(number)
        problems = [] if problem is None else [problem]
        width = len(layout.columns)
        if fields is not None and len(fields) != width:
            count = f"{len(fields)} field{'s' if len(fields) != 1 else ''}"
            problems.append(f"{ISSUE_FIELD_COUNT}: {count}, the header has {width}")
            fields = None
        is_garbled = check_bytes and any(_ESCAPED_BYTE.search(line) for line in lines)
        if is_garbled:
            problems.append(
                f"{ISSUE_ENCODING}: bytes not valid in {layout.encoding} (shown as \\x..); "
                "upload again naming the file's encoding, e.g. cp1252"
            )
        if fields is None:
            # The text as uploaded: fields joined again would lose their quoting.
            raw = "".join(lines).removesuffix("\n").removesuffix("\r")
            self.raw_records[index] = _escaped_bytes(raw) if is_garbled else raw
            self.rows.append(None)
        else:
            # Keep the bytes visible (\xe9) rather than guess what they were meant to be.
            self.rows.append([_escaped_bytes(value) for value in fields] if is_garbled else fields)
        if problems:
            self.issues[index] = "; ".join(problems)

    def to_arrow(self, layout: CsvLayout) -> pa.RecordBatch:
        width = len(layout.columns)
        filler = [None] * width
        transposed = list(zip(*(row or filler for row in self.rows), strict=True))
        by_name = dict(zip(layout.columns, transposed, strict=True)) if transposed else {}
        size = len(self.rows)
        arrays = [pa.array(self.numbers, pa.int64())]
        arrays += [pa.array(by_name.get(name, [None] * size), pa.string()) for name in TEXT_COLUMNS]
        for sparse in (self.issues, self.raw_records):
            arrays.append(pa.array([sparse.get(i) for i in range(size)], pa.string()))
        return pa.RecordBatch.from_arrays(arrays, schema=RECORD_SCHEMA)


def read_layout(stream: BinaryIO, encoding: str | None, delimiter: str | None) -> CsvLayout:
    """Sniff the encoding and parse the header from the start of ``stream`` (rewound after)."""
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    name = detect_encoding(head, encoding)
    text = head.decode(name, errors="replace")
    if name == "utf-8" and "\x00" in text:
        raise _binary_file_error(head)
    if not text.strip("\ufeff \r\n\t"):
        raise UnreadableFileError("the file is empty (no header line)")
    first_line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    if len(first_line) >= SNIFF_BYTES - 1:
        raise UnreadableFileError(
            f"the first line is longer than {SNIFF_BYTES} bytes: not a CSV header"
        )
    chosen, columns = parse_header(first_line, delimiter)
    return CsvLayout(name, chosen, columns)


def text_decoder(encoding: str) -> codecs.IncrementalDecoder:
    """An incremental decoder that decodes as :func:`read_batches` does (bad bytes kept)."""
    return codecs.getincrementaldecoder(encoding)(errors=_ESCAPE_ERRORS)


def is_cleanly_decodable(stream: BinaryIO, encoding: str) -> bool:
    """Whether every byte of ``stream`` decodes in ``encoding`` (stream rewound after)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        while chunk := stream.read(1 << 20):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        stream.seek(0)
    return True


class _PhysicalLines:
    """The file's lines for ``csv.reader``, each kept until its record is read (its raw text)."""

    def __init__(self, text: Iterable[str]) -> None:
        self._text = iter(text)
        self._again: deque[str] = deque()
        self.is_exhausted = False
        self.record: list[str] = []
        """The lines of the record being read."""
        self.first_line_number = 1
        """Where that record starts in the file (1: the header)."""

    def __iter__(self) -> _PhysicalLines:
        return self

    def __next__(self) -> str:
        if self._again:
            line = self._again.popleft()
        else:
            try:
                line = next(self._text)
            except StopIteration:
                self.is_exhausted = True
                raise
        self.record.append(line)
        return line

    def next_record(self) -> None:
        """Forget the lines of the record just read."""
        self.first_line_number += len(self.record)
        self.record = []

    def read_again_after_first(self) -> None:
        """Make the record only its first line: the lines after it are handed out again."""
        self._again.extendleft(reversed(self.record[1:]))
        del self.record[1:]
        self.is_exhausted = False


def _quoting_problem(error: csv.Error, lines: _PhysicalLines) -> str:
    line = lines.first_line_number
    if lines.is_exhausted:
        return f"{ISSUE_QUOTING}: the quote opened on line {line} is never closed"
    return f"{ISSUE_QUOTING}: line {line} breaks the CSV quoting rules ({error})"


def read_batches(
    stream: BinaryIO, layout: CsvLayout, *, batch_rows: int = 100_000, check_bytes: bool = True
) -> Iterator[pa.RecordBatch]:
    """Every record after the header, as Arrow batches of :data:`RECORD_SCHEMA`.

    Blank lines are no records and are skipped. A record that breaks the quoting rules (a quote
    left open, text after a closing quote, a field longer than :data:`MAX_FIELD_CHARS`) is its
    first line, kept as uploaded with an ``upload_issue``; the lines after it, which a stray quote
    would have swallowed, are read again as records of their own.
    """
    text = io.TextIOWrapper(stream, encoding=layout.encoding, errors=_ESCAPE_ERRORS, newline="")
    lines = _PhysicalLines(text)
    number = 0
    batch = _Batch()
    try:
        next(lines, None)  # the header, already parsed from the first line
        # strict: a lenient reader changes the value around a stray quote ('"a" b' reads 'a b').
        reader = csv.reader(lines, delimiter=layout.delimiter, strict=True)
        while True:
            lines.next_record()
            problem = None
            try:
                fields: list[str] | None = next(reader)
            except StopIteration:
                break
            except csv.Error as error:  # the reader goes on with the next line it is given
                fields, problem = None, _quoting_problem(error, lines)
                lines.read_again_after_first()
            if fields == []:
                continue
            number += 1
            batch.add(
                number, fields, lines.record, layout, check_bytes=check_bytes, problem=problem
            )
            if len(batch.rows) >= batch_rows:
                yield batch.to_arrow(layout)
                batch = _Batch()
    finally:
        text.detach()
    if batch.rows:
        yield batch.to_arrow(layout)
