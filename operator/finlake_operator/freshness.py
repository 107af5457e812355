"""Fresh and QualityOK of a pipeline, from the Prometheus metrics its streaming driver serves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from finlake.contracts.medallion_pipeline import FreshnessSpec
from finlake.contracts.resources import format_duration
from finlake_operator.status import FRESH, QUALITY_OK, Condition, Reason

MAX_EVENT_TIME = "finlake_pipeline_max_event_time_seconds"
ROWS = "finlake_pipeline_rows_total"


@dataclass(frozen=True)
class Freshness:
    """What the metrics say: conditions plus the lag for the status."""

    conditions: list[Condition]
    lag: str | None


def evaluate_freshness(
    metrics_text: str | None, objective: FreshnessSpec, now_s: float, now: str, generation: int
) -> Freshness:
    """Fresh / QualityOK from a /metrics payload (None: the endpoint did not answer)."""

    def condition(kind: str, status: str, reason: Reason, message: str) -> Condition:
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
