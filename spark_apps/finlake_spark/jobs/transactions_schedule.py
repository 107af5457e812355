"""The transactions batch for people: a run described in one line, the features refreshed and the
new transactions scored after it, and the hourly schedule of ``finlake pipeline run transactions
--schedule hourly``."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings
from finlake_spark.jobs.transactions_batch import RunResult
from finlake_spark.jobs.transactions_run import batch_session, run_once

log = logging.getLogger(__name__)


def describe(result: RunResult) -> str:
    """One line about a run, for people."""
    counts = result.counts
    if result.is_noop and result.hour_start is not None:
        return f"transactions: no bronze received in hour {result.hour_start:%Y-%m-%d %H}:00 UTC"
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


def refresh_features(settings: FinlakeSettings, result: RunResult) -> str | None:
    """Recompute the fraud features and materialize them online after a run that changed silver.

    Returns a line for people, or None when silver did not change. Never raises: the batch has
    committed already, and the next run (or ``finlake ml features``) refreshes again.
    """
    return _refresh(settings, result)[0]


def _refresh(settings: FinlakeSettings, result: RunResult) -> tuple[str | None, bool]:
    """``refresh_features``'s line, and whether the features were refreshed."""
    if result.counts.validated_rows == 0:
        return None, False
    try:
        from finlake.ml.settings import MlSettings
        from finlake.ml.store import FraudFeatureStore, read_validated
    except ImportError as error:
        return f"features: not refreshed, the ml extra is not installed ({error})", False
    try:
        ml = MlSettings()
        if not ml.refresh_after_batch:
            off = "features: not refreshed after batches (FINLAKE_ML__REFRESH_AFTER_BATCH=false)"
            return off, False
        with FraudFeatureStore(settings, ml) as store:
            done = store.refresh(read_validated(settings))
    except Exception as error:  # reported; the batch itself has committed
        log.exception("feature refresh after the transactions batch failed")
        return f"features: refresh failed ({error}); `finlake ml features` retries it", False
    line = (
        f"features: {done.transactions:,} transactions, online store materialized up to "
        f"{done.materialized_until:%Y-%m-%d %H:%M} UTC"
    )
    return line, True


def score_new(settings: FinlakeSettings) -> str:
    """Score the transactions silver holds without a prediction yet with the champion (after
    the features were refreshed: the batch scoring of the hourly run). Never raises."""
    from finlake.ml.registry import NoChampionError
    from finlake.ml.scoring import score_new_transactions
    from finlake.ml.settings import MlSettings

    ml = MlSettings()
    try:
        done = score_new_transactions(settings, ml)
    except NoChampionError as error:  # none yet, or one trained on features of an older finlake
        return f"predictions: none made: {error}"
    except Exception as error:  # reported; the batch and the features have committed
        log.exception("scoring after the transactions batch failed")
        return f"predictions: scoring failed ({error}); `finlake ml score` retries it"
    return (
        f"predictions: scored {done.scored:,} new transactions with {ml.model_name} version "
        f"{done.model_version}: {done.flagged:,} flagged as fraud"
    )


def run_and_refresh(
    settings: FinlakeSettings,
    report: Callable[[str], None],
    *,
    features: bool = True,
    hour: datetime | None = None,
    spark: SparkSession | None = None,
) -> RunResult:
    """One batch run, reported, then (``features``) the feature refresh and the scoring of the
    new transactions with the champion, each reported."""
    result = run_once(settings, hour=hour, spark=spark)
    report(describe(result))
    if not features:
        return result
    line, refreshed = _refresh(settings, result)
    if line:
        report(line)
    if refreshed:
        report(score_new(settings))
    return result


def run_hourly(
    settings: FinlakeSettings, report: Callable[[str], None], *, features: bool = True
) -> None:
    """Run now, then at the top of every hour, until SIGTERM or Ctrl-C.

    A failed run is retried at the next hour: that run picks up all bronze since the last
    successful one.
    """
    spark = batch_session(settings)
    scheduler = BlockingScheduler(timezone=UTC)

    def tick() -> None:
        try:
            run_and_refresh(settings, report, features=features, spark=spark)
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
