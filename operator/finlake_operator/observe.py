"""How children are doing, and the conditions that follow (pure functions of observed objects)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finlake_operator.status import (
    DEGRADED,
    PROGRESSING,
    READY,
    ChildState,
    Condition,
    ConditionStatus,
    Reason,
)

_DEGRADED: tuple[tuple[str, ConditionStatus], ...] = (
    (READY, "False"),
    (PROGRESSING, "False"),
    (DEGRADED, "True"),
)
FAILED_SPARK_STATES = {"FAILED", "SUBMISSION_FAILED", "FAILING", "INVALIDATING"}


@dataclass(frozen=True)
class Observed:
    """One child's state and whether it counts as ready or failed."""

    state: ChildState
    is_ready: bool
    is_failed: bool
    detail: str = ""


def observe_child(desired: dict[str, Any], actual: dict[str, Any] | None) -> Observed:
    """The state of one child from the object the API server returned."""
    kind, name = desired["kind"], desired["metadata"]["name"]

    def result(state: str, ready: bool, failed: bool = False, detail: str = "") -> Observed:
        return Observed(ChildState(kind=kind, name=name, state=state), ready, failed, detail)

    if actual is None:
        return result("Missing", False)
    status = actual.get("status") or {}
    if kind == "Deployment":
        wanted = actual.get("spec", {}).get("replicas", 1)
        for condition in status.get("conditions", []):
            if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
                return result("Failed", False, True, condition.get("message", ""))
        current = status.get("observedGeneration", 0) >= actual["metadata"].get("generation", 0)
        if wanted == 0:
            return result("ScaledToZero", True)
        if current and status.get("availableReplicas", 0) >= wanted:
            return result("Available", True)
        return result("Progressing", False)
    if kind == "SparkApplication":
        state = (status.get("applicationState") or {}).get("state") or "Pending"
        message = (status.get("applicationState") or {}).get("errorMessage", "")
        if state in FAILED_SPARK_STATES:
            return result(state.title(), False, True, message)
        return result(state.title(), state == "RUNNING")
    if kind == "ScheduledSparkApplication":
        state = status.get("scheduleState") or "Pending"
        if state == "FailedValidation":
            return result(state, False, True, status.get("reason", ""))
        return result(state, state == "Scheduled")
    return result("Applied", True)


def availability_conditions(observed: list[Observed], generation: int, now: str) -> list[Condition]:
    """Ready / Progressing / Degraded from the children's states."""

    def condition(kind: str, status: bool, reason: Reason, message: str) -> Condition:
        return Condition(
            type=kind,
            status="True" if status else "False",
            reason=reason.value,
            message=message,
            last_transition_time=now,
            observed_generation=generation,
        )

    failed = [o for o in observed if o.is_failed]
    waiting = [o for o in observed if not o.is_ready and not o.is_failed]
    if failed:
        message = "; ".join(
            f"{o.state.kind} {o.state.name} is {o.state.state}"
            + (f": {o.detail}" if o.detail else "")
            for o in failed
        )
        return [
            condition(READY, False, Reason.CHILD_FAILED, message),
            condition(PROGRESSING, False, Reason.CHILD_FAILED, message),
            condition(DEGRADED, True, Reason.CHILD_FAILED, message),
        ]
    if waiting:
        message = "waiting for " + ", ".join(
            f"{o.state.kind} {o.state.name} ({o.state.state})" for o in waiting
        )
        return [
            condition(READY, False, Reason.CHILDREN_STARTING, message),
            condition(PROGRESSING, True, Reason.CHILDREN_STARTING, message),
            condition(DEGRADED, False, Reason.AS_EXPECTED, ""),
        ]
    message = f"{len(observed)} children up to date and ready"
    return [
        condition(READY, True, Reason.RECONCILED, message),
        condition(PROGRESSING, False, Reason.RECONCILED, message),
        condition(DEGRADED, False, Reason.AS_EXPECTED, ""),
    ]


def degraded_conditions(reason: Reason, message: str, generation: int, now: str) -> list[Condition]:
    """The conditions of a resource that cannot be reconciled (invalid, missing reference)."""
    return [
        Condition(
            type=kind,
            status=status,
            reason=reason.value,
            message=message,
            last_transition_time=now,
            observed_generation=generation,
        )
        for kind, status in _DEGRADED
    ]


def paused_conditions(generation: int, now: str) -> list[Condition]:
    """Conditions of a paused resource: nothing is reconciled until the annotation goes."""
    message = "reconciliation paused by the finlake.io/paused annotation"
    return [
        Condition(
            type=PROGRESSING,
            status="False",
            reason=Reason.PAUSED.value,
            message=message,
            last_transition_time=now,
            observed_generation=generation,
        )
    ]
