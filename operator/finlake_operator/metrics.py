"""The operator's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECONCILES = Counter(
    "finlake_operator_reconcile_total",
    "Reconciliations per kind and result (ok, degraded, paused).",
    ["kind", "result"],
)
RECONCILE_ERRORS = Counter(
    "finlake_operator_reconcile_errors_total",
    "Reconciliations that failed with an unexpected error, per kind.",
    ["kind"],
)
RECONCILE_SECONDS = Histogram(
    "finlake_operator_reconcile_duration_seconds",
    "Duration of one reconciliation.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
