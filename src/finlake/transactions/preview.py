"""The rules' verdict on an upload, computed by DuckDB as the rows stream into bronze.

The hourly batch decides; this tells the uploader right away how many of its rows will be
quarantined and why (dedupe across uploads aside), with the very same SQL.
"""

from __future__ import annotations

from collections import Counter

import duckdb
import pyarrow as pa

from finlake.transactions.rules import failed_rule_sql, typed_select_sql

_LINEAGE = ("upload_issue", "received_at")


class RulePreview:
    """Counts of the first failed rule over the bronze tables it is given."""

    def __init__(self) -> None:
        self._connection = duckdb.connect()
        self._connection.execute("SET TimeZone = 'UTC'")
        self._counts: Counter[str] = Counter()
        typed = typed_select_sql("bronze_batch", _LINEAGE, "TIMESTAMPTZ")
        self._sql = (
            f"SELECT rule, count(*) FROM (SELECT {failed_rule_sql()} AS rule FROM ({typed}) AS t)"
            " AS r WHERE rule IS NOT NULL GROUP BY rule"
        )

    def add(self, bronze: pa.Table) -> None:
        """Count the failing rows of one bronze table (``transactions.raw`` columns)."""
        self._connection.register("bronze_batch", bronze)
        try:
            for rule, count in self._connection.execute(self._sql).fetchall():
                self._counts[str(rule)] += int(count)
        finally:
            self._connection.unregister("bronze_batch")

    def counts(self) -> dict[str, int]:
        """Failing rows per rule so far."""
        return dict(self._counts)
