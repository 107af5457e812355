"""The transactions batch for people: a run described in one line, and the hourly schedule of
``finlake pipeline run transactions --schedule hourly``."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from finlake.config import FinlakeSettings
from finlake_spark.jobs.transactions_batch import RunResult, batch_session, run_once

log = logging.getLogger(__name__)


def describe(result: RunResult) -> str:
    """One line about a run, for people."""
    counts = result.counts
    if result.is_noop:
        return "transactions: no new bronze since the last run; nothing to do"
    rules = ", ".join(f"{rule} {n:,}" for rule, n in sorted(counts.quarantined_by_rule.items()))
    scope = f"hour {result.hour_start:%Y-%m-%d %H}:00" if result.hour_start else "new bronze"
    return (
        f"transactions ({scope}): {counts.rows_in:,} rows read, {counts.validated_rows:,} new in "
        f"transactions.validated, {counts.quarantined_rows:,} new in transactions.quarantine"
        f"{f' ({rules})' if rules else ''}, {counts.summary_rows:,} summary windows updated, "
        f"{result.duration_s:.1f} s"
    )


def run_hourly(settings: FinlakeSettings, report: Callable[[str], None]) -> None:
    """Run now, then at the top of every hour, until SIGTERM or Ctrl-C.

    A failed run is retried at the next hour: that run picks up all bronze since the last
    successful one.
    """
    spark = batch_session(settings)
    scheduler = BlockingScheduler(timezone=UTC)

    def tick() -> None:
        try:
            report(describe(run_once(settings, spark=spark)))
        except Exception as error:  # one bad hour must not end the schedule
            log.exception("transactions batch failed; next try at the next hour")
            report(f"transactions: run failed ({error}); next try at the next hour")

    scheduler.add_job(
        tick,
        CronTrigger(minute=0, timezone=UTC),
        id="transactions-batch",
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    previous = signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    try:
        scheduler.start()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        spark.stop()
