"""How children are doing, and the conditions that follow (pure functions of observed objects)."""

from __future__ import annotations

from collections.abc import Callable
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
FAILED_VALIDATION = "FailedValidation"
SUSPENDED = "suspended, as its spec asks: no new run starts until suspend is false"


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
        return _observe_deployment(actual, result)
    if kind == "SparkApplication":
        state = (status.get("applicationState") or {}).get("state") or "Pending"
        message = (status.get("applicationState") or {}).get("errorMessage", "")
        if state in FAILED_SPARK_STATES:
            return result(state.title(), False, True, message)
        return result(state.title(), state == "RUNNING")
    if kind == "ScheduledSparkApplication":
        # The spark-operator returns before touching the status of a suspended schedule: its
        # state stays empty (or what it was), and suspended is what the spec asked for.
        if (actual.get("spec") or {}).get("suspend"):
            return result("Suspended", True, detail=SUSPENDED)
        state = status.get("scheduleState") or "Pending"
        if state == FAILED_VALIDATION:
            return result(state, False, True, status.get("reason", ""))
        return result(state, state == "Scheduled")
    return result("Applied", True)


def _observe_deployment(actual: dict[str, Any], result: Callable[..., Observed]) -> Observed:
    """A Deployment is ready once its rollout is done, as ``kubectl rollout status`` decides:
    the controller saw this generation, every wanted replica runs the new template and is
    available, no old one is left; ProgressDeadlineExceeded is a failed rollout."""
    status = actual.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    failure = conditions.get("ReplicaFailure") or {}
    if failure.get("status") == "True":
        return result("Failed", False, True, failure.get("message", ""))
    wanted = (actual.get("spec") or {}).get("replicas", 1)
    if wanted == 0:
        return result("ScaledToZero", True)
    if status.get("observedGeneration", 0) < actual["metadata"].get("generation", 0):
        return result("Progressing", False)  # its conditions are still the last rollout's
    progress = conditions.get("Progressing") or {}
    if progress.get("status") == "False" and progress.get("reason") == "ProgressDeadlineExceeded":
        message = progress.get("message") or "the rollout exceeded its progress deadline"
        return result("RolloutFailed", False, True, message)
    updated = status.get("updatedReplicas", 0)
    done = (
        updated >= wanted
        and status.get("replicas", 0) <= updated
        and status.get("availableReplicas", 0) >= updated
    )
    return result("Available", True) if done else result("Progressing", False)


def needs_recreation(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """True for a ScheduledSparkApplication in FailedValidation whose schedule or time zone
    the desired one changes: the spark-operator never validates a schedule again once it
    failed (not even after a fix), so only a new object gets the fixed one validated."""
    if live is None or (live.get("status") or {}).get("scheduleState") != FAILED_VALIDATION:
        return False
    fields = ("schedule", "timeZone")
    live_spec, desired_spec = live.get("spec") or {}, desired.get("spec") or {}
    return any(live_spec.get(field) != desired_spec.get(field) for field in fields)


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
    notes = [f"{o.state.kind} {o.state.name} is {o.detail}" for o in observed if o.detail]
    if notes:
        message += " (" + "; ".join(notes) + ")"
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
