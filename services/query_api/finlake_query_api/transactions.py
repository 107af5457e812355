"""Transactions in the API: upload request spooling, the upload and summary response models."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

from finlake.transactions.upload import UploadResult

SPOOL_IN_MEMORY_BYTES = 8 << 20


class UploadTooLargeError(ValueError):
    """The request body is larger than the configured upload limit."""


class Granularity(StrEnum):
    """Width of a summary window."""

    HOUR = "hour"
    DAY = "day"


class UploadPublic(BaseModel):
    """What an upload did: its id, whether it repeated an earlier one, and the row counts."""

    model_config = ConfigDict(frozen=True)
    upload_id: str = Field(description="Id of the upload (the same content gives the same id).")
    is_duplicate: bool = Field(description="True: this content was uploaded before; no-op.")
    file_name: str = Field(description="Name of the file this request uploaded.")
    first_file_name: str | None = Field(
        default=None, description="For a repeat: the name the content was first uploaded under."
    )
    content_sha256: str = Field(description="SHA-256 of the uploaded bytes.")
    size_bytes: int
    encoding: str = Field(description="Text encoding the file was read with.")
    delimiter: str = Field(description="Field delimiter the file was read with.")
    received_at: datetime = Field(description="When the upload (the first, for a repeat) landed.")
    rows_total: int = Field(description="Records written to transactions.raw.")
    rows_flagged: int = Field(description="Records the file itself garbles (field count, bytes).")
    flagged_by_issue: dict[str, int] | None = Field(
        description="Garbled records per kind of problem; null: unknown (see message)."
    )
    rows_failing_rules: int | None = Field(
        description="Records the batch will quarantine; null: unknown (see message)."
    )
    failing_by_rule: dict[str, int] | None = Field(
        description="Records to be quarantined, per rule; null: unknown (see message)."
    )
    rows_expected_valid: int | None = Field(
        description="Records that pass every rule (before the batch's dedupe on transaction_id); "
        "null: unknown (see message)."
    )
    message: str = Field(description="One line for people.")

    @classmethod
    def of(cls, result: UploadResult) -> UploadPublic:
        """The response for an upload result."""
        if result.is_duplicate:
            message = (
                f"same content as upload {result.upload_id} ({result.first_file_name}); "
                "nothing uploaded"
            )
            if not result.counts_known:
                message += "; its rows are no longer in transactions.raw: rule counts unknown"
        else:
            message = (
                f"{result.rows_total} rows in transactions.raw; the next batch run validates them"
            )
        return cls(
            upload_id=result.upload_id,
            is_duplicate=result.is_duplicate,
            file_name=result.file_name,
            first_file_name=result.first_file_name,
            content_sha256=result.content_sha256,
            size_bytes=result.size_bytes,
            encoding=result.encoding,
            delimiter=result.delimiter,
            received_at=result.received_at,
            rows_total=result.rows_total,
            rows_flagged=result.rows_flagged,
            message=message,
            **_rule_counts(result),
        )


def _rule_counts(result: UploadResult) -> dict[str, Any]:
    # Unknown counts are null, never zero: zero failing would claim every row valid.
    known = result.counts_known
    return {
        "flagged_by_issue": result.flagged_by_issue if known else None,
        "rows_failing_rules": sum(result.failing_by_rule.values()) if known else None,
        "failing_by_rule": result.failing_by_rule if known else None,
        "rows_expected_valid": result.rows_expected_valid if known else None,
    }


class SummaryWindow(BaseModel):
    """One account's transactions in one currency and hour or day."""

    model_config = ConfigDict(frozen=True)
    window_start: datetime
    window_end: datetime
    currency: str
    transaction_count: int
    amount_sum: Decimal
    amount_max: Decimal
    declined_count: int
    count_by_category: dict[str, int]
    amount_by_category: dict[str, Decimal]
    count_by_channel: dict[str, int]
    amount_by_channel: dict[str, Decimal]


class SummaryList(BaseModel):
    """A page of summary windows of one account, oldest first."""

    model_config = ConfigDict(frozen=True)
    account_id: str
    granularity: Granularity
    start: datetime
    end: datetime
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null: no windows follow in the range."
    )
    windows: list[SummaryWindow]


_SUMMARY_SQL = (
    "SELECT window_start, window_end, currency, transaction_count, amount_sum, amount_max, "
    "declined_count, count_by_category, amount_by_category, count_by_channel, amount_by_channel "
    "FROM transactions.summary WHERE account_id = ? AND granularity = ? "
    "AND window_start >= ? AND window_start < ?"
)


def summary_query(
    account_id: str, granularity: Granularity, start: datetime, end: datetime, limit: int,
    after: tuple[datetime, str] | None = None,
) -> tuple[str, list[object]]:  # fmt: skip
    """SQL and parameters of up to ``limit`` windows starting in [start, end), in the order of
    their key (window start, currency): those after the window ``after`` if given."""
    sql, params = _SUMMARY_SQL, [account_id, granularity.value, start, end]
    if after is not None:
        sql += " AND (window_start > ? OR (window_start = ? AND currency > ?))"
        params += [after[0], after[0], after[1]]
    return f"{sql} ORDER BY window_start, currency LIMIT ?", [*params, limit]


def _mapping(value: Any) -> dict[str, Any]:
    # DuckDB returns MAPs as dicts; some drivers as lists of key/value pairs.
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return {str(k): v for k, v in (value or [])}


def to_window(row: Sequence[Any]) -> SummaryWindow:
    """A window from a row selected by :func:`summary_query`."""
    start, end, currency, count, total, largest, declined, n_cat, a_cat, n_chan, a_chan = row
    return SummaryWindow(
        window_start=start,
        window_end=end,
        currency=currency,
        transaction_count=count,
        amount_sum=Decimal(str(total)),
        amount_max=Decimal(str(largest)),
        declined_count=declined,
        count_by_category=_mapping(n_cat),
        amount_by_category={k: Decimal(str(v)) for k, v in _mapping(a_cat).items()},
        count_by_channel=_mapping(n_chan),
        amount_by_channel={k: Decimal(str(v)) for k, v in _mapping(a_chan).items()},
    )


async def spool_body(chunks: AsyncIterator[bytes], limit_bytes: int) -> IO[bytes]:
    """The request body in a temporary file (in memory while small), at most ``limit_bytes``."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit_bytes:
                raise UploadTooLargeError(
                    f"the upload is larger than the limit of {limit_bytes:,} bytes"
                )
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool
