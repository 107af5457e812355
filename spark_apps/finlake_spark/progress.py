"""Micro-batch progress of every streaming query of a job: phase durations as metrics and logs.

Spark reports, per finished micro-batch, how long each phase took (``durationMs``); the
listener turns that into ``finlake_pipeline_microbatch_phase_seconds`` and one log line, so
that where a slow batch spent its time shows without the Spark UI.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming.listener import StreamingQueryListener

from finlake_spark.metrics import PHASE_SECONDS

log = logging.getLogger(__name__)


def observe(name: str, batch_id: int, rows: int, durations_ms: dict[str, int]) -> None:
    """Record one micro-batch's phases."""
    for phase, ms in durations_ms.items():
        PHASE_SECONDS.labels(name, phase).observe(ms / 1000)
    phases = ", ".join(f"{phase} {ms} ms" for phase, ms in sorted(durations_ms.items()))
    log.info("%s batch %s: %d rows, %s", name, batch_id, rows, phases)


class ProgressListener(StreamingQueryListener):
    """Observes each finished micro-batch of the session's queries."""

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        name = progress.name or str(progress.id)
        observe(name, progress.batchId, progress.numInputRows, dict(progress.durationMs))

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass


def observe_progress(spark: SparkSession) -> ProgressListener:
    """Register a listener on the session (``spark.streams.removeListener`` takes it back)."""
    listener = ProgressListener()
    spark.streams.addListener(listener)
    return listener
