"""The batched delivery-latency histogram exposes what prometheus_client's Histogram would."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from finlake_ingestion.metrics import BatchedHistogram

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def exposition(registry: CollectorRegistry) -> dict[str, float]:
    """The samples by name and labels, without the client's creation timestamps."""
    text = generate_latest(registry).decode()
    lines = (line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")
    return {sample: float(value) for sample, value in lines if "_created" not in sample}


def test_batches_of_observations_read_like_one_histogram_observe_at_a_time() -> None:
    rng = random.Random(5)
    # Values on the bucket bounds too: a value equal to a bound counts in that bucket (le).
    values = [rng.choice([*BUCKETS, rng.expovariate(20), rng.uniform(0, 60)]) for _ in range(5000)]
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batched = BatchedHistogram("lat_seconds", "Latency.", "source", BUCKETS, ours)
    reference = Histogram("lat_seconds", "Latency.", ["source"], buckets=BUCKETS, registry=theirs)
    for start in range(0, len(values), 700):
        batched.labels("replay").observe_many(values[start : start + 700])
    batched.labels("yahoo").observe(0.02)
    batched.labels("yahoo").observe_many([])
    for value in values:
        reference.labels("replay").observe(value)
    reference.labels("yahoo").observe(0.02)
    # The same samples; the sums equal up to the order the floats were added in.
    assert exposition(ours) == pytest.approx(exposition(theirs), rel=1e-12)
    assert exposition(ours)['lat_seconds_count{source="replay"}'] == 5000
    assert exposition(ours)['lat_seconds_bucket{le="0.001",source="replay"}'] > 0
