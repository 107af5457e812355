"""Prometheus metrics of the ingestion service, in a registry of their own."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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
        self.delivery_latency = BatchedHistogram(
            "finlake_ingestion_delivery_latency_seconds",
            "From produce() to the broker's acknowledgement.",
            "source",
            (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            r,
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
        self.cycle_overruns = Counter(
            "finlake_ingestion_yahoo_cycle_overruns",
            "Poll cycles that ran for a poll interval; the symbols left waited for the next cycle.",
            registry=r,
        )
        self.backfilled = Counter(
            "finlake_ingestion_yahoo_backfilled_ticks",
            "Ticks a gap in polling held back (outage, open breaker, backoff, restart, too small"
            " a budget): bars that closed after the symbol's previous successful request and"
            " over two poll intervals plus one bar before this one. Steady polling, late fill-ins"
            " and a new symbol's first lookback count zero.",
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


class BatchedHistogram(Collector):
    """A histogram with one label that takes its observations a batch at a time.

    prometheus_client's ``Histogram.observe`` costs about a microsecond per value (a lock, a
    bucket search and two value updates in Python); the producer has one delivery latency per
    record, over a hundred thousand a second, so ``observe_many`` bins a whole batch with numpy.
    It is exposed through the client's custom-collector API as the same metric family a
    ``Histogram`` would be (``_bucket`` with ``le``, ``_count``, ``_sum``).
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.bounds = np.array([*sorted(buckets), math.inf])
        self._children: dict[str, BatchedHistogramChild] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def labels(self, value: str) -> BatchedHistogramChild:
        """The histogram of one label value (created on first use)."""
        with self._lock:
            child = self._children.get(value)
            if child is None:
                child = self._children[value] = BatchedHistogramChild(self.bounds)
            return child

    def describe(self) -> Iterator[Metric]:
        """The family, without samples (what the registry checks names against)."""
        yield HistogramMetricFamily(self.name, self.documentation, labels=[self.label])

    def collect(self) -> Iterator[Metric]:
        """Cumulative bucket counts and the sum, per label value."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label])
        with self._lock:
            children = sorted(self._children.items())
        for value, child in children:
            counts, total = child.snapshot()
            buckets = [
                (floatToGoString(bound), float(count))
                for bound, count in zip(self.bounds, np.cumsum(counts), strict=True)
            ]
            family.add_metric([value], buckets, total)
        yield family


class BatchedHistogramChild:
    """Bucket counts (not cumulative) and the sum of one label value."""

    def __init__(self, bounds: np.ndarray) -> None:
        self._bounds = bounds
        self._counts = np.zeros(len(bounds), dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        """One observation."""
        self.observe_many((value,))

    def observe_many(self, values: Sequence[float]) -> None:
        """Many observations at once; a value falls in the first bucket whose bound is >= it."""
        if not values:
            return
        array = np.asarray(values, dtype=np.float64)
        slots = np.searchsorted(self._bounds, array, side="left")
        counts = np.bincount(slots, minlength=len(self._bounds))
        with self._lock:
            self._counts += counts
            self._sum += float(array.sum())

    def snapshot(self) -> tuple[np.ndarray, float]:
        """A copy of the counts and the sum, taken together."""
        with self._lock:
            return self._counts.copy(), self._sum
