"""The replay source: a CSV or Parquet file of ticks, validated whole before publishing."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from finlake.contracts.models import MarketTick
from finlake_ingestion.metrics import IngestionMetrics
from finlake_ingestion.pacing import EventPacer
from finlake_ingestion.replay_file import (
    EXTRA_HEADER_PREFIX,
    MAPPED,
    ReplayRow,
    ReplaySummary,
    iter_rows,
    parse_row,
    read_columns,
)
from finlake_ingestion.sources.base import Batch, Headers

log = logging.getLogger(__name__)
HEARTBEAT_S = 5.0  # longest silent wait between batches while pacing


class ReplaySource:
    """Publishes a file's ticks as fast as possible, or at ``speed`` times their event-time pace."""

    name = "replay"

    def __init__(
        self,
        path: Path,
        metrics: IngestionMetrics,
        *,
        speed: float | None = None,
        batch_size: int = 5000,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.path = path
        self.metrics = metrics
        self.speed = speed
        self.batch_size = batch_size
        self._wall_clock = wall_clock
        self.summary: ReplaySummary | None = None

    def rows(self) -> Generator[ReplayRow, None, None]:
        """Every row of the file, parsed; ReplayFileError at the first bad one."""
        columns = read_columns(self.path)
        extra_columns = tuple(name for name in columns if name not in MAPPED)
        produced_at = self._wall_clock()
        for number, (where, values) in enumerate(iter_rows(self.path, columns)):
            if number % 10_000 == 0:  # the clock once per row would slow a fast replay down
                produced_at = self._wall_clock()
            yield parse_row(values, where, produced_at, extra_columns)

    def validate(self) -> ReplaySummary:
        """Read the whole file once; raises ReplayFileError naming the first bad line."""
        columns = read_columns(self.path)
        summary = ReplaySummary(extra_columns=tuple(c for c in columns if c not in MAPPED))
        extra_values: Counter[str] = Counter()
        for row in self.rows():
            summary.rows += 1
            moment = row.tick.timestamp
            if summary.first is None or moment < summary.first:
                summary.first = moment
            if summary.last is None or moment > summary.last:
                summary.last = moment
            for name, _ in row.extras or ():
                extra_values[name] += 1
        summary.extra_values = dict(extra_values)
        if summary.extra_columns:
            log.info(
                "replay file has columns the contract lacks; they travel as Kafka headers",
                extra={"file": str(self.path), "columns": list(summary.extra_columns)},
            )
        self.summary = summary
        return summary

    def prepare(self) -> None:
        """Validate the whole file: a bad line fails the run before anything is published."""
        if self.summary is None:
            self.validate()

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        """Validate the whole file, then yield its ticks in file order (paced if asked)."""
        self.prepare()
        pacer = EventPacer(self.speed) if self.speed is not None else None
        with closing(self.rows()) as rows:
            yield from self._paced(rows, pacer, stop)

    def _paced(
        self, rows: Iterator[ReplayRow], pacer: EventPacer | None, stop: threading.Event
    ) -> Iterator[Batch]:
        ticks: list[MarketTick] = []
        headers: list[Headers | None] = []
        for row in rows:
            if stop.is_set():
                return
            if pacer is not None:
                delay = pacer.delay_for(row.tick.timestamp)
                if delay > 0:
                    if ticks:
                        yield self._batch(ticks, headers, paced=True)
                        ticks, headers = [], []
                    while delay > 0:
                        if stop.wait(min(delay, HEARTBEAT_S)):
                            return
                        delay -= HEARTBEAT_S
                        if delay > 0:
                            yield Batch([])  # a long pause: keep /healthz fresh
            ticks.append(row.tick)
            headers.append(row.extras)
            if len(ticks) >= self.batch_size:
                yield self._batch(ticks, headers, paced=pacer is not None)
                ticks, headers = [], []
        if ticks:
            yield self._batch(ticks, headers, paced=pacer is not None)

    def _batch(
        self, ticks: list[MarketTick], headers: list[Headers | None], *, paced: bool
    ) -> Batch:
        counts: Counter[str] = Counter(n for h in headers for n, _ in h or ())
        for name, count in counts.items():
            self.metrics.unmapped_values.labels(name.removeprefix(EXTRA_HEADER_PREFIX)).inc(count)
        if paced:
            # A paced row is read before it waits for its event time: stamp it at hand-off.
            produced_at = self._wall_clock()
            ticks = [tick.model_copy(update={"produced_at": produced_at}) for tick in ticks]
        return Batch(ticks, headers if counts else None)
