"""The Trino engine of the query layer: bound ``?`` parameters, a timeout, retries, a metric.

Lake tables are named ``namespace.table`` as in every engine: the connection's default catalog is
the lake's Iceberg catalog (``FINLAKE_TRINO__CATALOG``), so ``market.ohlc_1m`` resolves there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import closing
from typing import Any

import pyarrow as pa
import requests
import trino
from prometheus_client import Counter
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from trino.exceptions import HttpError, TrinoConnectionError, TrinoExternalError, TrinoQueryError

from finlake.config import TrinoSettings
from finlake.errors import FinlakeError
from finlake.query import QueryError, TableNotFoundError, rows_to_arrow

_TABLE = re.compile(r"^([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)$", re.IGNORECASE)
# Failures worth another attempt: the server is (re)starting, overloaded, or a storage read failed.
_TRANSIENT = (
    TrinoConnectionError,
    TrinoExternalError,
    HttpError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)

# The client is untyped; this is the one place its connection factory is given a type.
_connect: Callable[..., trino.dbapi.Connection] = trino.dbapi.connect

QUERY_FAILURES = Counter(
    "finlake_trino_query_failures",
    "Trino queries that failed after all retries, by kind.",
    ["kind"],
)


class TrinoUnavailableError(FinlakeError):
    """Trino did not answer (or kept failing) within the configured attempts."""


class TrinoEngine:
    """Runs SQL on one Trino coordinator; values are always bound, never formatted into SQL."""

    name = "trino"

    def __init__(self, settings: TrinoSettings) -> None:
        self.settings = settings

    def _connect(self) -> trino.dbapi.Connection:
        return _connect(
            host=self.settings.host,
            port=self.settings.port,
            user=self.settings.user,
            catalog=self.settings.catalog,
            http_scheme="http",
            request_timeout=self.settings.request_timeout_s,
            # Our tenacity policy below does the retrying, so attempts don't multiply.
            max_attempts=1,
        )

    def query(
        self, sql: str, params: Sequence[Any] = ()
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """(column names, rows) of ``sql`` with its ``?`` placeholders bound to ``params``."""
        attempt = retry(
            retry=retry_if_exception_type(_TRANSIENT),
            stop=stop_after_attempt(self.settings.retries),
            wait=wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        )(self._query_once)
        try:
            return attempt(sql, list(params))
        except TrinoQueryError as error:
            QUERY_FAILURES.labels(kind=error.error_name or "query").inc()
            # Trino checks the schema first: a fresh lake's tables are SCHEMA_NOT_FOUND.
            if error.error_name in ("TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND"):
                raise TableNotFoundError(f"no such lake table: {error.message}") from error
            if isinstance(error, TrinoExternalError):
                raise TrinoUnavailableError(f"Trino failed: {error.message}") from error
            raise QueryError(f"Trino rejected the query: {error.message}") from error
        except _TRANSIENT as error:
            QUERY_FAILURES.labels(kind="unavailable").inc()
            raise TrinoUnavailableError(
                f"Trino at {self.settings.url} did not answer after {self.settings.retries} "
                f"attempts ({type(error).__name__}); is it running (`finlake stack status`)?"
            ) from error

    def _query_once(self, sql: str, params: list[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        with closing(self._connect()) as connection:
            cursor = connection.cursor()
            # With parameters the client sends PREPARE + EXECUTE ... USING: values stay bound.
            cursor.execute(sql, params or None)
            rows = [tuple(row) for row in cursor.fetchall()]
            columns = [column[0] for column in cursor.description or []]
            return columns, rows

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """The result of ``sql`` as an Arrow table (the client returns rows; converted here)."""
        return rows_to_arrow(*self.query(sql, params))

    def snapshot_id(self, table: str) -> int | None:
        """Current Iceberg snapshot id of ``namespace.table`` (None: no snapshot yet)."""
        match = _TABLE.match(table)
        if match is None:
            raise QueryError(f"not a lake table name: {table!r}")
        namespace, name = match.groups()
        # Identifiers cannot be bound; the regex above admits only plain names.
        _, rows = self.query(
            f'SELECT snapshot_id FROM "{namespace}"."{name}$history" '
            "WHERE is_current_ancestor ORDER BY made_current_at DESC LIMIT 1"
        )
        return int(rows[0][0]) if rows else None
