"""Fresh and QualityOK of a pipeline: a market pipeline's from the Prometheus metrics its
streaming driver serves, a transactions pipeline's from the runs of its batch.

A transactions pipeline has no stream and its batch serves no metrics, so:

- Fresh compares the time since its last successful batch run finished (the newest COMPLETED
  SparkApplication of its batch schedule) with ``freshness.maxLag`` (90m unless set: an hourly
  batch plus half an hour). No completed run but a failed one: False (NoSuccessfulRun); no run
  finished yet: Unknown (NoDataYet), until the first run ends.
- QualityOK is Unknown with reason NotApplicable: the operator reads no quality measure of the
  batch (each run's counts are in ``transactions.batch_runs``). Said once, not "unreachable".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from finlake.contracts.medallion_pipeline import FreshnessSpec
from finlake.contracts.resources import format_duration
from finlake_operator.status import FRESH, QUALITY_OK, Condition, Reason

MAX_EVENT_TIME = "finlake_pipeline_max_event_time_seconds"
ROWS = "finlake_pipeline_rows_total"
SCHEDULED_APP_LABEL = "sparkoperator.k8s.io/scheduled-app-name"
"""The label the spark-operator puts on each run (SparkApplication) of a schedule."""
BATCH_QUALITY_NOT_APPLICABLE = (
    "not measured on a transactions pipeline: its batch serves no metrics the operator reads "
    "(each run's rows_in and quarantined_rows are in transactions.batch_runs)"
)


@dataclass(frozen=True)
class Freshness:
    """What the metrics say: conditions plus the lag for the status."""

    conditions: list[Condition]
    lag: str | None


def _condition(
    kind: str, status: str, reason: Reason, message: str, now: str, generation: int
) -> Condition:
    return Condition.model_validate(
        {
            "type": kind,
            "status": status,
            "reason": reason.value,
            "message": message,
            "lastTransitionTime": now,
            "observedGeneration": generation,
        }
    )


def _state(run: dict[str, Any]) -> str:
    return str(((run.get("status") or {}).get("applicationState") or {}).get("state") or "")


def _finished_s(run: dict[str, Any]) -> float | None:
    """When a run ended (its terminationTime), as epoch seconds."""
    value = (run.get("status") or {}).get("terminationTime")
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def newest_completed_run(runs: Sequence[dict[str, Any]]) -> tuple[float, dict[str, Any]] | None:
    """The schedule's run that finished successfully last, with when (epoch seconds)."""
    completed = [
        (finished, run)
        for run in runs
        if _state(run) == "COMPLETED" and (finished := _finished_s(run)) is not None
    ]
    return max(completed, key=lambda item: item[0]) if completed else None


def last_success(runs: Sequence[dict[str, Any]]) -> str | None:
    """When the schedule's last successful run finished (its terminationTime), from its runs.

    Not from the schedule's status: the spark-operator sets lastRunName to the run it has just
    created, then fills pastSuccessfulRunNames with COMPLETED runs only, so the last run is never
    among the successful ones (and lastRun is when a run started, not when it succeeded)."""
    newest = newest_completed_run(runs)
    return None if newest is None else str(newest[1]["status"]["terminationTime"])


def evaluate_batch_freshness(
    runs: Sequence[dict[str, Any]],
    objective: FreshnessSpec,
    now_s: float,
    now: str,
    generation: int,
) -> Freshness:
    """Fresh / QualityOK of a transactions pipeline from the runs of its batch schedule."""
    quality = _condition(
        QUALITY_OK, "Unknown", Reason.NOT_APPLICABLE, BATCH_QUALITY_NOT_APPLICABLE, now, generation
    )
    newest = newest_completed_run(runs)
    if newest is not None:
        finished, run = newest
        lag_delta = timedelta(seconds=max(0, round(now_s - finished)))
        lag, limit = format_duration(lag_delta), format_duration(objective.max_lag)
        name = run["metadata"]["name"]
        if lag_delta <= objective.max_lag:
            text = f"last successful batch run {name} finished {lag} ago (<= {limit})"
            fresh = _condition(FRESH, "True", Reason.WITHIN_SLO, text, now, generation)
        else:
            text = f"last successful batch run {name} finished {lag} ago (> {limit})"
            fresh = _condition(FRESH, "False", Reason.LAG_OVER_SLO, text, now, generation)
        return Freshness([fresh, quality], lag)
    failed = sorted(
        (run for run in runs if _state(run) == "FAILED"),
        key=lambda run: str(run["metadata"].get("creationTimestamp", "")),
    )
    if failed:
        last = failed[-1]
        error = ((last.get("status") or {}).get("applicationState") or {}).get("errorMessage")
        text = f"no batch run succeeded yet; {len(failed)} failed, the last: " + (
            f"{last['metadata']['name']}" + (f" ({error})" if error else "")
        )
        fresh = _condition(FRESH, "False", Reason.NO_SUCCESSFUL_RUN, text[:1000], now, generation)
        return Freshness([fresh, quality], None)
    fresh = _condition(
        FRESH, "Unknown", Reason.NO_DATA_YET, "no batch run finished yet", now, generation
    )
    return Freshness([fresh, quality], None)


def evaluate_freshness(
    metrics_text: str | None, objective: FreshnessSpec, now_s: float, now: str, generation: int
) -> Freshness:
    """Fresh / QualityOK from a /metrics payload (None: the endpoint did not answer)."""

    def condition(kind: str, status: str, reason: Reason, message: str) -> Condition:
        return _condition(kind, status, reason, message, now, generation)

    def unknown(message: str) -> Freshness:
        return Freshness(
            [
                condition(FRESH, "Unknown", Reason.METRICS_UNREACHABLE, message),
                condition(QUALITY_OK, "Unknown", Reason.METRICS_UNREACHABLE, message),
            ],
            None,
        )

    if metrics_text is None:
        return unknown("the stream's metrics endpoint does not answer")
    try:
        samples = [
            sample
            for family in text_string_to_metric_families(metrics_text)
            for sample in family.samples
        ]
    except ValueError as error:  # an HTML page, a proxy's error text, ...
        return unknown(
            f"the stream's metrics endpoint answers, but not in Prometheus' text format ({error})"
        )
    newest: float | None = None
    quarantined = checked = 0.0
    for sample in samples:
        if sample.name == MAX_EVENT_TIME:
            newest = max(newest or 0.0, sample.value)
        elif sample.name == ROWS and sample.labels.get("layer") == "silver":
            checked += sample.value
            if sample.labels.get("outcome") == "quarantined":
                quarantined += sample.value
    conditions = []
    lag: str | None = None
    if newest is None:
        conditions.append(condition(FRESH, "Unknown", Reason.NO_DATA_YET, "no event seen yet"))
    else:
        lag_delta = timedelta(seconds=max(0, round(now_s - newest)))
        lag = format_duration(lag_delta)
        limit = format_duration(objective.max_lag)
        if lag_delta <= objective.max_lag:
            conditions.append(condition(FRESH, "True", Reason.WITHIN_SLO, f"lag {lag} <= {limit}"))
        else:
            conditions.append(
                condition(FRESH, "False", Reason.LAG_OVER_SLO, f"lag {lag} > {limit}")
            )
    if checked == 0:
        conditions.append(condition(QUALITY_OK, "Unknown", Reason.NO_DATA_YET, "no row checked"))
    else:
        ratio = quarantined / checked
        text = f"quarantine ratio {ratio:.4f} (limit {objective.max_quarantine_ratio:g})"
        ok = ratio <= objective.max_quarantine_ratio
        reason = Reason.WITHIN_SLO if ok else Reason.QUARANTINE_OVER_SLO
        conditions.append(condition(QUALITY_OK, "True" if ok else "False", reason, text))
    return Freshness(conditions, lag)


def fetch_metrics(url: str, timeout_s: float = 2.0) -> str | None:
    """The /metrics text, or None when it cannot be read (the conditions become Unknown)."""
    try:
        response = httpx.get(url, timeout=timeout_s)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return response.text
