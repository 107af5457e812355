"""What a market micro-batch came to: the tagged batch in numbers (rows per outcome and their
event-time spans, from one aggregation), the counts it records and the time each step took.

``MarketBatch`` writes by these numbers and records them in ``market.pipeline_runs`` and the
metrics; they live here so that ``market_stream`` holds the batch's steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from finlake.quality import LATE_RULE
from finlake.transforms.silver import DUPLICATE

UNDECODABLE = "undecodable"  # the outcome of a record that goes to the dead letters


def undecodable() -> Column:
    """Whether a tagged row is a record that did not decode."""
    return F.col("outcome").eqNullSafe(UNDECODABLE)


@dataclass
class BatchCounts:
    """What one micro-batch did, layer by layer."""

    rows_in: int = 0
    bronze_rows: int = 0
    dead_letter_rows: int = 0
    silver_rows: int = 0
    duplicate_rows: int = 0
    dropped_rows: int = 0
    quarantined_rows: int = 0
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    gold_1m_rows: int = 0
    gold_1h_rows: int = 0


@dataclass
class Steps:
    """Seconds each step of a micro-batch took, for the batch's log line."""

    laps: dict[str, float] = field(default_factory=dict)
    mark: float = field(default_factory=time.monotonic)

    def lap(self, name: str) -> None:
        """Close the step ``name``: the time since the previous lap."""
        now = time.monotonic()
        self.laps[name] = round(now - self.mark, 3)
        self.mark = now


@dataclass(frozen=True)
class Outcome:
    """Rows of one (outcome, Kafka partition, symbol) of a tagged batch, their event-time span."""

    outcome: str | None
    partition: int | None
    pending: int | None
    rows: int
    earliest: datetime | None
    latest: datetime | None
    last_offset: int | None = None
    symbol: str | None = None


@dataclass(frozen=True)
class Summary:
    """A tagged batch in numbers, from one aggregation: rows per outcome, event-time spans."""

    groups: tuple[Outcome, ...]

    @property
    def outcomes(self) -> dict[str | None, int]:
        """Rows per outcome (null: goes to silver unless already there)."""
        totals: dict[str | None, int] = {}
        for group in self.groups:
            totals[group.outcome] = totals.get(group.outcome, 0) + group.rows
        return totals

    @property
    def pending(self) -> set[int]:
        """Writer schema ids of records that were not looked up before decoding."""
        return {g.pending for g in self.groups if g.pending is not None}

    def earliest(self, outcome: str | None) -> datetime | None:
        """The earliest event time among the rows with ``outcome``."""
        times = [g.earliest for g in self.groups if g.outcome == outcome and g.earliest]
        return min(times, default=None)

    def partition_max(self, previous: Mapping[int, datetime]) -> dict[int, datetime]:
        """Per Kafka partition, the latest event time of a row that passed the expectations."""
        return _latest_by(self.groups, previous, lambda group: group.partition)

    def symbol_max(self, previous: Mapping[str, datetime]) -> dict[str, datetime]:
        """Per symbol, the latest event time of a row that passed the expectations (the clock
        lateness is judged by, carried to the next batch)."""
        return _latest_by(self.groups, previous, lambda group: group.symbol)

    def next_offsets(self) -> dict[int, int]:
        """Per Kafka partition read, the offset after the batch's last record of it."""
        after: dict[int, int] = {}
        for group in self.groups:
            if group.partition is None or group.last_offset is None:
                continue
            after[group.partition] = max(after.get(group.partition, 0), group.last_offset + 1)
        return after


K = TypeVar("K")


def _latest_by(
    groups: Iterable[Outcome], previous: Mapping[K, datetime], key: Callable[[Outcome], K | None]
) -> dict[K, datetime]:
    """``previous`` moved on by the latest event time of the groups that passed the checks."""
    maxima = dict(previous)
    for group in groups:
        name = key(group)
        if name is None or group.latest is None:
            continue
        if group.outcome not in (None, LATE_RULE, DUPLICATE):
            continue
        prior = maxima.get(name)
        maxima[name] = max(group.latest, prior) if prior else group.latest
    return maxima


def summarize(tagged: DataFrame) -> Summary:
    """One aggregation over a tagged batch (see ``tag_ticks``)."""
    rows = (
        tagged.groupBy("outcome", "kafka_partition", "pending", "symbol")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.min("timestamp").alias("earliest"),
            F.max("timestamp").alias("latest"),
            F.max("kafka_offset").alias("last_offset"),
        )
        .collect()
    )
    return Summary(
        tuple(
            Outcome(
                r.outcome,
                r.kafka_partition,
                r.pending,
                r.rows,
                r.earliest,
                r.latest,
                r.last_offset,
                r.symbol,
            )
            for r in rows
        )
    )
