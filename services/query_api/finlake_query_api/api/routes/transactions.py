"""/v1/transactions: CSV uploads into bronze, account summaries from gold."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from finlake.lake.tables import TRANSACTIONS_SUMMARY
from finlake.query import Engine, QueryError, Row, asking_the_catalog
from finlake.transactions.csv_input import UnreadableFileError
from finlake.transactions.upload import open_lake, upload_transactions
from finlake_query_api.api.deps import ApiKeyDep, MarketDep, StateDep
from finlake_query_api.api.problems import PROBLEMS
from finlake_query_api.bars import decode_keyed_cursor, encode_cursor
from finlake_query_api.errors import asking_the_engine
from finlake_query_api.market import request_bound
from finlake_query_api.transactions import (
    Granularity,
    SummaryList,
    UploadPublic,
    UploadTooLargeError,
    spool_body,
    summary_query,
    to_window,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/transactions", tags=["transactions"], responses=PROBLEMS)
MAX_WINDOWS = 5000  # per page
DEFAULT_RANGE = {Granularity.HOUR: timedelta(days=7), Granularity.DAY: timedelta(days=90)}
CSV_BODY = {
    "requestBody": {
        "required": True,
        "description": "The CSV file's bytes (columns of the transaction contract).",
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/uploads",
    status_code=201,
    summary="Upload a transactions CSV into bronze (the same content again is a no-op)",
    openapi_extra=CSV_BODY,
    responses={
        200: {"description": "The same content was uploaded before: nothing uploaded now."},
        413: PROBLEMS[400] | {"description": "Content Too Large"},
        415: PROBLEMS[400] | {"description": "Unsupported Media Type (a multipart form)"},
    },
)
async def create_upload(
    request: Request,
    response: Response,
    _: ApiKeyDep,
    state: StateDep,
    file_name: Annotated[
        str, Query(min_length=1, max_length=255, description="Name of the uploaded file.")
    ] = "upload.csv",
    encoding: Annotated[
        str | None,
        Query(max_length=40, description="Text encoding if not UTF-8 (e.g. cp1252)."),
    ] = None,
    delimiter: Annotated[
        str | None,
        Query(min_length=1, max_length=1, description="Field delimiter; default: detected."),
    ] = None,
) -> UploadPublic:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type == "multipart/form-data":  # curl -F: the form's framing is no CSV
        raise HTTPException(
            415,
            "send the CSV as the raw request body (Content-Type: text/csv), e.g. "
            "curl -H 'Content-Type: text/csv' --data-binary @file.csv",
        )
    limit = state.settings.api.max_upload_mb << 20
    declared = request.headers.get("content-length", "")
    # The body is read as a stream, so a too-large upload is refused before it is read.
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the upload is larger than the limit of {limit:,} bytes")
    try:
        spool = await spool_body(request.stream(), limit)
    except UploadTooLargeError as error:
        raise HTTPException(413, str(error)) from error
    try:
        with asking_the_catalog():
            catalog, warehouse = await run_in_threadpool(open_lake, state.settings)
            result = await run_in_threadpool(
                upload_transactions,
                catalog,
                warehouse,
                spool,  # type: ignore[arg-type]  # SpooledTemporaryFile is a binary file
                file_name=file_name,
                encoding=encoding,
                delimiter=delimiter,
            )
    except UnreadableFileError as error:
        raise HTTPException(422, f"{file_name}: {error}") from error
    finally:
        spool.close()
    if result.is_duplicate:  # nothing was created
        response.status_code = 200
    return UploadPublic.of(result)


@router.get("/summary", summary="Transactions of one account per hour or day, paginated")
async def account_summary(
    _: ApiKeyDep,
    market: MarketDep,
    account_id: Annotated[str, Query(min_length=1, max_length=64, description="The account.")],
    granularity: Annotated[Granularity, Query(description="hour or day.")] = Granularity.DAY,
    start: Annotated[
        datetime | None, Query(description="First window start (UTC); default: a range back.")
    ] = None,
    end: Annotated[datetime | None, Query(description="Windows before this (UTC).")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_WINDOWS, description="Windows per page (one per currency).")
    ] = MAX_WINDOWS,
    cursor: Annotated[
        str | None,
        Query(max_length=128, pattern=r"^[A-Za-z0-9_\-]+$",
              description="next_cursor of the previous page."),
    ] = None,
) -> SummaryList:  # fmt: skip
    # In the years both engines hold; also keeps the default start and any offset in range.
    end_at = request_bound(end if end is not None else datetime.now(UTC))
    start_at = request_bound(start) if start is not None else end_at - DEFAULT_RANGE[granularity]
    if start_at >= end_at:
        raise HTTPException(400, "start must be before end")
    after = None if cursor is None else decode_keyed_cursor(cursor, granularity)
    # One more than a page: whether windows follow, without a count.
    query = summary_query(account_id, granularity, start_at, end_at, limit + 1, after)
    rows = await run_in_threadpool(_summary_rows, market.engine, query)
    windows = [to_window(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:  # windows are keyed by their start and currency
        last = windows[-1]
        next_cursor = encode_cursor(granularity, last.window_start, last.currency)
    return SummaryList(
        account_id=account_id,
        granularity=granularity,
        start=start_at,
        end=end_at,
        next_cursor=next_cursor,
        windows=windows,
    )


def _summary_rows(engine: Engine, query: tuple[str, list[object]]) -> list[Row]:
    with asking_the_engine():
        try:
            # Asked first: DuckDB names a missing table only when its namespace exists.
            snapshot = engine.snapshot_id(TRANSACTIONS_SUMMARY.identifier)
        except QueryError as error:  # TableNotFoundError, or Trino's word for it
            snapshot = None
            log.info("no %s yet: %s", TRANSACTIONS_SUMMARY.identifier, error)
        if snapshot is None:
            raise HTTPException(
                404, "no transaction summaries yet: upload a CSV and run the transactions batch"
            )
        return engine.query(*query)[1]
