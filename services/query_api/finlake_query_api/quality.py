"""Data quality and freshness per layer, read from the tables and the pipeline's run log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from finlake_query_api.bars import BAR_DATA_TIME, utc
from finlake_query_api.market import Market

# (layer, table, event time): the time that says how fresh the layer is.
LAYERS = (
    ("bronze", "market.raw", '"timestamp"'),
    ("dead_letter", "market.dead_letter", "kafka_timestamp"),
    ("silver", "market.cleaned", '"timestamp"'),
    ("quarantine", "market.quarantine", '"timestamp"'),
    ("gold_1m", "market.ohlc_1m", BAR_DATA_TIME),
    ("gold_1h", "market.ohlc_1h", BAR_DATA_TIME),
)
RUN_COLUMNS = (
    "batch_id", "committed_at", "watermark", "max_event_time", "rows_in", "bronze_rows",
    "dead_letter_rows", "silver_rows", "duplicate_rows", "quarantined_rows",
)  # fmt: skip


class LayerState(NamedTuple):
    """Row count and latest event time of one layer's table."""

    layer: str
    table: str
    is_available: bool
    row_count: int
    max_event_time: datetime | None


class QualityState(NamedTuple):
    """Everything the quality endpoint reports, as of the current snapshots."""

    layers: list[LayerState]
    quarantine_by_rule: dict[str, int]
    duplicate_rows: int
    last_run: dict[str, Any] | None


def _layer(market: Market, layer: str, table: str, column: str) -> LayerState:
    """The layer's rows and its newest event time not ahead of the clock: bronze keeps every
    tick, so one from a producer with a skewed clock (year 2099) would otherwise read as fresh
    data for ever and hide a stalled feed."""
    if not market.has(table):
        return LayerState(layer, table, False, 0, None)
    sql = f"SELECT count(*), max(CASE WHEN {column} <= ? THEN {column} END) FROM {table}"
    [(count, latest)] = market.query(sql, [market.clock()]) or [(0, None)]
    return LayerState(layer, table, True, int(count), None if latest is None else utc(latest))


def quality_state(market: Market) -> QualityState:
    """Per-layer counts and freshness, quarantine counts by rule, the latest pipeline run."""

    def compute() -> QualityState:
        layers = [_layer(market, *layer) for layer in LAYERS]
        rules = market.has("market.quarantine") and market.query(
            "SELECT rule, count(*) FROM market.quarantine GROUP BY rule ORDER BY rule"
        )
        by_rule = {str(rule): int(count) for rule, count in rules or []}
        if not market.has("market.pipeline_runs"):
            return QualityState(layers, by_rule, 0, None)
        [(duplicates,)] = market.query(
            "SELECT coalesce(sum(duplicate_rows), 0) FROM market.pipeline_runs"
        ) or [(0,)]
        runs = market.query(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM market.pipeline_runs "
            "ORDER BY committed_at DESC LIMIT 1"
        )
        last_run = dict(zip(RUN_COLUMNS, runs[0], strict=True)) if runs else None
        return QualityState(layers, by_rule, int(duplicates), last_run)

    tables = [table for _, table, _ in LAYERS] + ["market.pipeline_runs"]
    result: QualityState = market.cached("quality", tables, compute)
    return result
