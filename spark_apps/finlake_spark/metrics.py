"""Prometheus metrics of the Spark jobs (served by the driver when a port is configured)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

ROWS = Counter(
    "finlake_pipeline_rows_total",
    "Rows handled by the market pipeline, per layer and outcome.",
    ["pipeline", "layer", "outcome"],
)
QUARANTINED = Counter(
    "finlake_pipeline_quarantined_total",
    "Rows quarantined by the market pipeline, per rule.",
    ["pipeline", "rule"],
)
BATCH_SECONDS = Histogram(
    "finlake_pipeline_batch_duration_seconds",
    "Duration of one micro-batch.",
    ["pipeline"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
MAX_EVENT_TIME = Gauge(
    "finlake_pipeline_max_event_time_seconds",
    "Latest event time that passed the checks (Unix seconds): freshness.",
    ["pipeline"],
)
WATERMARK = Gauge(
    "finlake_pipeline_watermark_seconds",
    "Max event time minus the allowed lateness (Unix seconds): older ticks are late.",
    ["pipeline"],
)
PHASE_SECONDS = Histogram(
    "finlake_pipeline_microbatch_phase_seconds",
    "Time a streaming query's micro-batch spent per phase (Spark's durationMs: latestOffset, "
    "walCommit, queryPlanning, addBatch, commitOffsets, triggerExecution the whole), per query.",
    ["query", "phase"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
PIPELINE = "market"


def record_batch(
    counts: Any, duration_s: float, max_event_time: datetime | None, lateness_s: int
) -> None:
    """Count one micro-batch's rows per layer and outcome."""
    for layer, outcome, value in (
        ("kafka", "in", counts.rows_in),
        ("bronze", "written", counts.bronze_rows),
        ("bronze", "dead_letter", counts.dead_letter_rows),
        ("silver", "written", counts.silver_rows),
        ("silver", "duplicate", counts.duplicate_rows),
        ("silver", "dropped", counts.dropped_rows),
        ("silver", "quarantined", counts.quarantined_rows),
        ("gold_1m", "written", counts.gold_1m_rows),
        ("gold_1h", "written", counts.gold_1h_rows),
    ):
        ROWS.labels(PIPELINE, layer, outcome).inc(value)
    for rule, value in counts.quarantined_by_rule.items():
        QUARANTINED.labels(PIPELINE, rule).inc(value)
    BATCH_SECONDS.labels(PIPELINE).observe(duration_s)
    if max_event_time is not None:
        MAX_EVENT_TIME.labels(PIPELINE).set(max_event_time.timestamp())
        WATERMARK.labels(PIPELINE).set(max_event_time.timestamp() - lateness_s)
