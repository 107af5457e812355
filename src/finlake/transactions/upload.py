"""Uploading a transactions CSV into bronze ``transactions.raw`` through PyIceberg (no Spark).

An upload is identified by its content: the upload id is derived from the SHA-256 of the text the
file decodes to (and the delimiter it is read with), and ``transactions.uploads`` records every
accepted upload, so the same content uploaded again is a no-op that says so. The rows of one
upload are committed in one Iceberg transaction (all or nothing); the ledger row follows. Should
a crash fall between the two commits, the next upload of the same content finds the bronze commit
by its snapshot property and only writes the ledger row. The same content uploaded twice at once
(a client retrying a slow upload, two API replicas) takes turns under a lock named after its
upload id (``finlake.lake.locks``): the second finds the first's ledger row. A repeat reports the
same per-issue and per-rule counts as the first upload: the ledger keeps only totals, so they are
counted again from that upload's bronze rows.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import BinaryIO

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, BooleanExpression, EqualTo, Or
from pyiceberg.table import Table

from finlake.config import FinlakeSettings
from finlake.lake.connection import lake_connection, open_catalog
from finlake.lake.locks import catalog_lock
from finlake.lake.tables import TRANSACTIONS_RAW, TRANSACTIONS_UPLOADS
from finlake.transactions.csv_input import (
    CsvLayout,
    UnreadableFileError,
    is_cleanly_decodable,
    read_batches,
    read_layout,
    text_decoder,
)
from finlake.transactions.iceberg import ensure_table
from finlake.transactions.preview import RulePreview

UPLOAD_PROPERTY = "finlake.upload-id"
COMMIT_ROWS = 500_000
"""Rows per Iceberg append inside the upload's transaction (bounds memory)."""

Progress = Callable[[int], None]
"""Called with the number of bytes of the file read so far."""


def open_lake(settings: FinlakeSettings) -> tuple[Catalog, str]:
    """The lake's catalog (created on first use) and warehouse URI, as the upload needs them."""
    connection = lake_connection(settings)
    if connection.is_local:
        settings.catalog_db.parent.mkdir(parents=True, exist_ok=True)
    return open_catalog(settings), connection.warehouse


def upload_id_of(text_sha256: str, delimiter: str) -> str:
    """The upload id of the text a file decodes to (its SHA-256), split at ``delimiter``.

    Uploading the same bytes again is a no-op, unless they read differently: a file first
    uploaded as UTF-8 by mistake can be uploaded again naming its real encoding. Naming an
    encoding that decodes them to the same text (ascii for ASCII bytes) is still a repeat.
    """
    key = "\0".join((text_sha256, delimiter))
    return f"up-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


@dataclass(frozen=True)
class UploadResult:
    """What an upload did: its id, whether it was a repeat, and the counts."""

    upload_id: str
    file_name: str
    content_sha256: str
    size_bytes: int
    encoding: str
    delimiter: str
    rows_total: int
    rows_flagged: int
    received_at: datetime
    is_duplicate: bool = False
    flagged_by_issue: dict[str, int] = field(default_factory=dict)
    failing_by_rule: dict[str, int] = field(default_factory=dict)
    counts_known: bool = True
    """False: a repeat whose bronze rows are no longer all there; the two dicts are empty."""
    first_file_name: str | None = None
    """For a repeat: the name the content was first uploaded under (``file_name`` is this one's)."""

    @property
    def rows_expected_valid(self) -> int:
        """Rows that pass every rule (before the batch's dedupe on transaction_id)."""
        return self.rows_total - sum(self.failing_by_rule.values())


def _fingerprint(stream: BinaryIO, encoding: str) -> tuple[str, str, int]:
    """SHA-256 of the bytes and of the text they decode to, and the size (stream rewound)."""
    content, text = hashlib.sha256(), hashlib.sha256()
    decoder = text_decoder(encoding)
    size = 0
    while chunk := stream.read(1 << 20):
        content.update(chunk)
        # surrogatepass: bytes the encoding cannot decode are lone surrogates in the text.
        text.update(decoder.decode(chunk).encode("utf-8", "surrogatepass"))
        size += len(chunk)
    text.update(decoder.decode(b"", final=True).encode("utf-8", "surrogatepass"))
    stream.seek(0)
    return content.hexdigest(), text.hexdigest(), size


def _repeat_of(upload_id: str, content_sha256: str, layout: CsvLayout) -> BooleanExpression:
    """Ledger rows of the same upload: its id, or (rows written before ids came from the decoded
    text) the same bytes read with the same encoding and delimiter."""
    same_read = And(
        EqualTo(term="content_sha256", value=content_sha256),
        And(
            EqualTo(term="encoding", value=layout.encoding),
            EqualTo(term="delimiter", value=layout.delimiter),
        ),
    )
    return Or(EqualTo(term="upload_id", value=upload_id), same_read)


def _previous_upload(
    uploads: Table, raw: Table, repeat: BooleanExpression, file_name: str
) -> UploadResult | None:
    found = uploads.scan(row_filter=repeat).to_arrow()
    if found.num_rows == 0:
        return None
    row = found.slice(0, 1).to_pylist()[0]
    return _recounted(
        UploadResult(
            upload_id=row["upload_id"],
            file_name=file_name,
            first_file_name=row["file_name"],
            content_sha256=row["content_sha256"],
            size_bytes=row["size_bytes"],
            encoding=row["encoding"],
            delimiter=row["delimiter"],
            rows_total=row["rows_total"],
            rows_flagged=row["rows_flagged"],
            received_at=row["received_at"],
            is_duplicate=True,
        ),
        raw,
    )


def _recounted(previous: UploadResult, raw: Table) -> UploadResult:
    """The repeat with its per-issue and per-rule counts, counted again from its bronze rows.

    The ledger holds only totals; without this a repeat claimed every row valid.
    """
    flagged: Counter[str] = Counter()
    preview = RulePreview()
    total = 0
    scan = raw.refresh().scan(row_filter=EqualTo(term="upload_id", value=previous.upload_id))
    for batch in scan.to_arrow_batch_reader():
        total += batch.num_rows
        _count_issues(batch.column("upload_issue"), flagged)
        preview.add(pa.Table.from_batches([batch]))
    if total != previous.rows_total:  # bronze rows gone (a dropped table): say so, not zero
        return replace(previous, counts_known=False)
    return replace(previous, flagged_by_issue=dict(flagged), failing_by_rule=preview.counts())


def _count_issues(issues: pa.Array | pa.ChunkedArray, flagged: Counter[str]) -> None:
    for issue in issues.drop_null().to_pylist():
        flagged[issue.split(":")[0]] += 1


def _committed_to_bronze(raw: Table, upload_id: str) -> bool:
    return any(
        snapshot.summary is not None and snapshot.summary.get(UPLOAD_PROPERTY) == upload_id
        for snapshot in raw.snapshots()
    )


def _bronze_tables(
    batches: Iterator[pa.RecordBatch], upload_id: str, file_name: str, received_at: datetime
) -> Iterator[pa.Table]:
    schema = TRANSACTIONS_RAW_ARROW
    pending: list[pa.RecordBatch] = []
    rows = 0

    def flush() -> pa.Table:
        size = sum(batch.num_rows for batch in pending)
        records = pa.Table.from_batches(pending)
        columns = {
            "upload_id": pa.array([upload_id] * size, pa.string()),
            "file_name": pa.array([file_name] * size, pa.string()),
            "received_at": pa.array([received_at] * size, pa.timestamp("us", tz="UTC")),
        }
        return pa.table(
            [columns.get(name, records.column(name) if name in records.schema.names else None)
             for name in schema.names],
            schema=schema,
        )  # fmt: skip

    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= COMMIT_ROWS:
            yield flush()
            pending, rows = [], 0
    if pending:
        yield flush()


TRANSACTIONS_RAW_ARROW = pa.schema(
    [
        ("upload_id", pa.string()),
        ("file_name", pa.string()),
        ("row_number", pa.int64()),
        ("received_at", pa.timestamp("us", tz="UTC")),
        *[(column.name, pa.string()) for column in TRANSACTIONS_RAW.columns[4:]],
    ]
)


def upload_transactions(
    catalog: Catalog,
    warehouse: str,
    stream: BinaryIO,
    *,
    file_name: str,
    encoding: str | None = None,
    delimiter: str | None = None,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> UploadResult:
    """Append the CSV in ``stream`` (seekable) to ``transactions.raw``; a repeat is a no-op."""
    layout: CsvLayout = read_layout(stream, encoding, delimiter)
    content_sha256, text_sha256, size = _fingerprint(stream, layout.encoding)
    upload_id = upload_id_of(text_sha256, layout.delimiter)
    uploads = ensure_table(catalog, TRANSACTIONS_UPLOADS, warehouse)
    raw = ensure_table(catalog, TRANSACTIONS_RAW, warehouse)
    repeat = _repeat_of(upload_id, content_sha256, layout)
    previous = _previous_upload(uploads, raw, repeat, file_name)
    if previous is not None:
        return previous
    # The same content uploaded at the same time (a client retrying a slow upload, two API
    # replicas): one appends, the other waits, then finds its ledger row.
    with catalog_lock(catalog, f"transactions-upload/{upload_id}"):
        previous = _previous_upload(uploads.refresh(), raw, repeat, file_name)
        if previous is not None:
            return previous
        return _append_upload(
            catalog, warehouse, stream, uploads, layout, (upload_id, content_sha256, size),
            file_name=file_name, progress=progress, received_at=clock().astimezone(UTC),
        )  # fmt: skip


def _append_upload(
    catalog: Catalog,
    warehouse: str,
    stream: BinaryIO,
    uploads: Table,
    layout: CsvLayout,
    identity: tuple[str, str, int],
    *,
    file_name: str,
    progress: Progress | None,
    received_at: datetime,
) -> UploadResult:
    """Append a new upload (``identity``: upload id, content SHA-256, size) and its ledger row."""
    upload_id, content_sha256, size = identity
    raw = ensure_table(catalog, TRANSACTIONS_RAW, warehouse)
    check_bytes = not is_cleanly_decodable(stream, layout.encoding)
    flagged: Counter[str] = Counter()
    preview = RulePreview()
    total = 0

    def counted(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        nonlocal total
        for batch in batches:
            total += batch.num_rows
            _count_issues(batch.column("upload_issue"), flagged)
            if progress is not None:
                progress(stream.tell())
            yield batch

    tables = _bronze_tables(
        counted(read_batches(stream, layout, check_bytes=check_bytes)),
        upload_id,
        file_name,
        received_at,
    )
    is_recovery = _committed_to_bronze(raw, upload_id)
    with raw.transaction() as transaction:
        for table in tables:
            preview.add(table)
            if not is_recovery:
                transaction.append(table, snapshot_properties={UPLOAD_PROPERTY: upload_id})
        if total == 0:  # leaving the block by an error commits nothing
            raise UnreadableFileError("the file has a header but no records")
    result = UploadResult(
        upload_id=upload_id,
        file_name=file_name,
        content_sha256=content_sha256,
        size_bytes=size,
        encoding=layout.encoding,
        delimiter=layout.delimiter,
        rows_total=total,
        rows_flagged=sum(flagged.values()),
        received_at=received_at,
        flagged_by_issue=dict(flagged),
        failing_by_rule=preview.counts(),
    )
    uploads.append(_ledger_row(result))
    return result


def _ledger_row(result: UploadResult) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "upload_id": result.upload_id,
                "content_sha256": result.content_sha256,
                "file_name": result.file_name,
                "size_bytes": result.size_bytes,
                "encoding": result.encoding,
                "delimiter": result.delimiter,
                "rows_total": result.rows_total,
                "rows_flagged": result.rows_flagged,
                "received_at": result.received_at,
            }
        ],
        schema=pa.schema(
            [
                ("upload_id", pa.string()),
                ("content_sha256", pa.string()),
                ("file_name", pa.string()),
                ("size_bytes", pa.int64()),
                ("encoding", pa.string()),
                ("delimiter", pa.string()),
                ("rows_total", pa.int64()),
                ("rows_flagged", pa.int64()),
                ("received_at", pa.timestamp("us", tz="UTC")),
            ]
        ),
    )
