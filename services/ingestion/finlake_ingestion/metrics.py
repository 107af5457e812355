"""Prometheus metrics of the ingestion service, in a registry of their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

BREAKER_STATES = ["closed", "open", "half_open"]


class IngestionMetrics:
    """Every metric the producer and the sources report; one instance per service."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.produced = Counter(
            "finlake_ingestion_records_produced",
            "Records the broker acknowledged.",
            ["source"],
            registry=r,
        )
        self.failed = Counter(
            "finlake_ingestion_records_failed",
            "Records whose delivery failed for good.",
            ["source"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "finlake_ingestion_delivery_latency_seconds",
            "From produce() to the broker's acknowledgement.",
            ["source"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.source_errors = Counter(
            "finlake_ingestion_source_errors",
            "Errors of a source, by kind (rate_limited, unknown_symbol, bad_response, ...).",
            ["source", "kind"],
            registry=r,
        )
        self.duplicates = Counter(
            "finlake_ingestion_duplicates_skipped",
            "Ticks a source saw again and did not publish twice.",
            ["source"],
            registry=r,
        )
        self.breaker = Enum(
            "finlake_ingestion_circuit_breaker_state",
            "State of the circuit breaker in front of an external source.",
            ["source"],
            states=BREAKER_STATES,
            registry=r,
        )
        self.yahoo_requests = Counter(
            "finlake_ingestion_yahoo_requests",
            "Calls to Yahoo Finance, by outcome (ok, empty, rate_limited, error).",
            ["outcome"],
            registry=r,
        )
        self.yahoo_rate_limited = Counter(
            "finlake_ingestion_yahoo_rate_limited",
            "Yahoo answers with HTTP 429 (YFRateLimitError).",
            registry=r,
        )
        self.budget_exhausted = Counter(
            "finlake_ingestion_yahoo_budget_exhausted",
            "Poll cycles cut short because the request budget was used up.",
            registry=r,
        )
        self.backfilled = Counter(
            "finlake_ingestion_yahoo_backfilled_ticks",
            "Ticks fetched for a gap longer than one poll interval (after an outage).",
            registry=r,
        )
        self.backfill_truncated = Counter(
            "finlake_ingestion_yahoo_backfill_truncated_seconds",
            "Seconds of a gap older than Yahoo's intraday history: not recoverable.",
            registry=r,
        )
        self.unmapped_values = Counter(
            "finlake_ingestion_replay_extra_values",
            "Values of replay-file columns the contract has no field for (sent as headers).",
            ["column"],
            registry=r,
        )
        self.last_poll = Gauge(
            "finlake_ingestion_last_batch_timestamp_seconds",
            "When a source last produced a batch (Unix time).",
            ["source"],
            registry=r,
        )
