"""A streaming query's micro-batches between two moments, from the job's /metrics.

Spark jobs export each micro-batch's phases (``finlake_spark.progress``); a bench reads the
totals before and after what it measures and reports the batches in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

PHASES = "finlake_pipeline_microbatch_phase_seconds"
Totals = dict[str, tuple[float, float, float]]


@dataclass
class BatchStats:
    """A query's micro-batches over a stretch of time."""

    count: int
    mean_s: dict[str, float]  # per phase (Spark's durationMs names)
    slow: float  # share of batches longer than 1 s


def phase_totals(metrics_url: str, query: str) -> Totals:
    """Per phase of ``query``'s micro-batches so far: count, seconds, count within 1 s."""
    text = httpx.get(metrics_url, timeout=10).text
    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != PHASES:
            continue
        for sample in family.samples:
            if sample.labels.get("query") != query:
                continue
            entry = totals.setdefault(sample.labels["phase"], [0.0, 0.0, 0.0])
            if sample.name.endswith("_count"):
                entry[0] = sample.value
            elif sample.name.endswith("_sum"):
                entry[1] = sample.value
            elif sample.name.endswith("_bucket") and sample.labels.get("le") == "1.0":
                entry[2] = sample.value
    return {phase: (n, total, fast) for phase, (n, total, fast) in totals.items()}


def batch_stats(before: Totals, after: Totals) -> BatchStats:
    """The micro-batches between two ``phase_totals``: count, mean per phase, share over 1 s."""
    delta = {
        phase: tuple(a - b for a, b in zip(now, before.get(phase, (0, 0, 0)), strict=True))
        for phase, now in after.items()
    }
    count, _, fast = delta.get("triggerExecution", (0.0, 0.0, 0.0))
    means = {phase: total / n for phase, (n, total, _) in delta.items() if n}
    return BatchStats(int(count), means, 1 - fast / count if count else 0.0)
