"""The status every finlake resource reports: conditions, children, a short summary."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
FRESH = "Fresh"
QUALITY_OK = "QualityOK"
ConditionStatus = Literal["True", "False", "Unknown"]


class Reason(StrEnum):
    """Machine-readable reasons of the conditions (CamelCase, as Kubernetes expects)."""

    RECONCILED = "Reconciled"
    CHILDREN_STARTING = "ChildrenStarting"
    CHILD_FAILED = "ChildFailed"
    INVALID_SPEC = "InvalidSpec"
    SECRET_NOT_FOUND = "SecretNotFound"
    DASHBOARD_KEY_NOT_CONFIGURED = "DashboardKeyNotConfigured"
    CONFIG_MAP_NOT_FOUND = "ConfigMapNotFound"
    CONFIG_MAP_KEY_NOT_FOUND = "ConfigMapKeyNotFound"
    MISSING_CRD = "MissingCustomResourceDefinition"
    APPLY_FAILED = "ApplyFailed"
    PAUSED = "Paused"
    AS_EXPECTED = "AsExpected"
    METRICS_UNREACHABLE = "MetricsUnreachable"
    NO_DATA_YET = "NoDataYet"
    WITHIN_SLO = "WithinObjective"
    LAG_OVER_SLO = "LagOverObjective"
    QUARANTINE_OVER_SLO = "QuarantineOverObjective"
    NO_SUCCESSFUL_RUN = "NoSuccessfulRun"
    NOT_APPLICABLE = "NotApplicable"


class _Status(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class Condition(_Status):
    """One condition, as in Kubernetes' metav1.Condition."""

    type: str = Field(max_length=316, description="Ready, Progressing, Degraded, Fresh, QualityOK.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(default=None, ge=0, description="Generation seen.")


class ChildState(_Status):
    """One object the operator owns for this resource, and how it is doing."""

    kind: str = Field(description="Kind of the child.")
    name: str = Field(description="Name of the child.")
    state: str = Field(description="Applied, Available, Running, Failed, ...")


class ResourceStatus(_Status):
    """Status of a MarketFeed, MedallionPipeline or AlertRule."""

    observed_generation: int | None = Field(default=None, description="Last generation handled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing, Degraded (and Fresh, QualityOK on pipelines: from the "
        "stream's metrics on a market pipeline; on a transactions pipeline Fresh from its last "
        "successful batch run and QualityOK Unknown, reason NotApplicable).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    children: list[ChildState] = Field(default_factory=list, description="Owned objects.")
    symbols: int | None = Field(default=None, description="MarketFeed: symbols polled.")
    lag: str | None = Field(
        default=None,
        description="MedallionPipeline: freshness lag (transactions: since the last successful "
        "batch run finished).",
    )
    last_success: str | None = Field(
        default=None,
        description="MedallionPipeline: when the last successful batch run finished (RFC 3339).",
    )


def now_rfc3339() -> str:
    """The current UTC time, RFC 3339 to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_condition(
    previous: list[Condition], new: Condition, *, now: str | None = None
) -> list[Condition]:
    """``previous`` with ``new`` set; the transition time moves only when the status changes."""
    merged: list[Condition] = []
    found = False
    for condition in previous:
        if condition.type != new.type:
            merged.append(condition)
            continue
        found = True
        time = (
            condition.last_transition_time
            if condition.status == new.status
            else (now or new.last_transition_time)
        )
        merged.append(new.model_copy(update={"last_transition_time": time}))
    if not found:
        merged.append(
            new.model_copy(update={"last_transition_time": now or new.last_transition_time})
        )
    return merged


def transitions(before: list[Condition], after: list[Condition]) -> list[Condition]:
    """Conditions whose status or reason changed (what deserves an Event)."""
    old = {condition.type: (condition.status, condition.reason) for condition in before}
    return [c for c in after if old.get(c.type) != (c.status, c.reason)]
