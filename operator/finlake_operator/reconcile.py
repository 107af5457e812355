"""The level-based reconcile loop every kind shares: parse, resolve, apply, observe, report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ValidationError

from finlake.contracts.resources import PAUSED_ANNOTATION
from finlake_operator import metrics
from finlake_operator.builders.common import Owner
from finlake_operator.kube import Kube, ObjectRef, api_error_message
from finlake_operator.observe import (
    Observed,
    availability_conditions,
    degraded_conditions,
    needs_recreation,
    observe_child,
    paused_conditions,
)
from finlake_operator.status import Condition, Reason, merge_condition, now_rfc3339, transitions

MAX_BACKOFF_S = 300.0
SpecT = TypeVar("SpecT", bound=BaseModel)


class Degradation(Exception):
    """The resource cannot be reconciled as it is; ``reason`` and ``message`` go to Degraded."""

    def __init__(self, reason: Reason, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry = retry


@dataclass
class Plan:
    """What a kind wants: its children, plus extra conditions and status fields."""

    children: list[dict[str, Any]]
    extra_conditions: Callable[[list[Observed], str], list[Condition]] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    obsolete: list[ObjectRef] = field(default_factory=list)
    """Children the spec no longer asks for (another flow's, a part switched off): deleted."""


Planner = Callable[[Owner, Any, Kube], Plan]


def owner_of(body: kopf.Body) -> Owner:
    """The owner identity of a resource body."""
    meta = body["metadata"]
    return Owner(
        kind=body["kind"],
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        generation=int(meta.get("generation", 1)),
    )


def parse_spec(model: type[SpecT], spec: Any) -> SpecT:
    """The validated spec; what the CRD schema could not refuse becomes Degraded (not retried)."""
    try:
        return model.model_validate(dict(spec))
    except ValidationError as error:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            if e["loc"]
            else f"spec: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise Degradation(Reason.INVALID_SPEC, problems, retry=False) from error


def backoff(retry: int) -> float:
    """Seconds before the next attempt: 5, 10, 20, ... up to 5 minutes."""
    return float(min(MAX_BACKOFF_S, 5.0 * 2 ** min(retry, 10)))


def is_paused(body: kopf.Body) -> bool:
    """True when the resource carries ``finlake.io/paused: "true"``."""
    annotations = body["metadata"].get("annotations") or {}
    return str(annotations.get(PAUSED_ANNOTATION, "")).lower() == "true"


def reconcile(
    *,
    body: kopf.Body,
    patch: kopf.Patch,
    kube: Kube,
    planner: Planner,
    spec_model: type[BaseModel],
    retry: int,
    logger: kopf.Logger,
) -> None:
    """Bring the children in line with the spec and report the result in ``status``."""
    owner = owner_of(body)
    started = time.monotonic()
    now = now_rfc3339()
    previous = [
        Condition.model_validate(c) for c in (body.get("status") or {}).get("conditions", [])
    ]
    result = "ok"
    summary: dict[str, Any] = {}
    children_status: list[dict[str, Any]] | None = None
    error: Degradation | None = None
    try:
        if is_paused(body):
            result = "paused"
            new = paused_conditions(owner.generation, now)
        else:
            spec = parse_spec(spec_model, body["spec"])
            plan = planner(owner, spec, kube)
            # Each child on its own: one the API server refuses (a claim that cannot shrink)
            # holds back none of the others; Degraded names every refusal.
            observed: list[Observed] = []
            refusals: list[Degradation] = []
            for child in plan.children:
                try:
                    observed.append(_apply(kube, child))
                except Degradation as refusal:
                    refusals.append(refusal)
            removed = delete_children(kube, plan.obsolete, owner.uid)
            if removed:
                logger.info(f"{owner.kind} {owner.name}: deleted {', '.join(removed)}")
            if refusals:
                raise Degradation(refusals[0].reason, "; ".join(r.message for r in refusals))
            new = availability_conditions(observed, owner.generation, now)
            if plan.extra_conditions is not None:
                new += plan.extra_conditions(observed, now)
            summary = plan.summary
            children_status = [o.state.model_dump(by_alias=True) for o in observed]
    except Degradation as degradation:
        error = degradation
        result = "degraded"
        new = degraded_conditions(degradation.reason, degradation.message, owner.generation, now)
    conditions = previous
    for condition in new:
        conditions = merge_condition(conditions, condition, now=now)
    changed = _report_transitions(body, previous, conditions)
    patch.status["conditions"] = [
        c.model_dump(by_alias=True, exclude_none=True) for c in conditions
    ]
    patch.status["observedGeneration"] = owner.generation
    if children_status is not None:
        patch.status["children"] = children_status
    for key, value in summary.items():
        patch.status[key] = value
    metrics.RECONCILES.labels(owner.kind, result).inc()
    metrics.RECONCILE_SECONDS.labels(owner.kind).observe(time.monotonic() - started)
    if error is not None:
        if not error.retry:
            # Retrying cannot help; a new generation of the spec gets a new attempt. Logged once
            # per transition, not on every resync.
            if changed:
                logger.warning(f"{owner.kind} {owner.name}: {error.message}")
            return
        raise kopf.TemporaryError(error.message, delay=backoff(retry))


def _apply(kube: Kube, child: dict[str, Any]) -> Observed:
    """Apply one child and observe it; an API error is Degraded with the server's message (and
    retried with backoff: a 5xx, such as a list the server cannot merge, as much as a 4xx)."""
    try:
        _recreate_if_stuck(kube, child)
        actual = _apply_clearing_strategy(kube, child)
    except ApiException as error:
        ref = ObjectRef.of(child)
        if error.status == 404:
            raise Degradation(
                Reason.MISSING_CRD,
                f"cannot create {ref}: the API server does not serve {child['apiVersion']} "
                f"{child['kind']} (is its operator installed?)",
            ) from error
        if error.status in (400, 403, 409, 422):
            raise Degradation(
                Reason.APPLY_FAILED, f"{ref} was refused: {api_error_message(error)}"
            ) from error
        raise Degradation(
            Reason.APPLY_FAILED,
            f"{ref} could not be applied (HTTP {error.status}): {api_error_message(error)}",
        ) from error
    return observe_child(child, actual)


def _recreate_if_stuck(kube: Kube, child: dict[str, Any]) -> None:
    """Delete a ScheduledSparkApplication stuck in FailedValidation whose schedule the spec
    has since changed: the spark-operator never validates it again, the new one it does."""
    if child["kind"] != "ScheduledSparkApplication":
        return
    ref = ObjectRef.of(child)
    if needs_recreation(child, kube.get(ref)):
        kube.delete(ref)


def _apply_clearing_strategy(kube: Kube, child: dict[str, Any]) -> dict[str, Any]:
    """Apply ``child``; a Deployment turning Recreate first loses its ``rollingUpdate``.

    The API server defaulted that field under no field manager, so an apply that omits it leaves
    it, and a Recreate Deployment with it is invalid (a 422): it is removed by a merge patch of
    the strategy, then the apply is tried again."""
    try:
        return kube.apply(child)
    except ApiException as error:
        strategy = (
            child.get("spec", {}).get("strategy", {}) if child["kind"] == "Deployment" else {}
        )
        refused_rolling = error.status == 422 and "rollingUpdate" in api_error_message(error)
        if strategy.get("type") != "Recreate" or not refused_rolling:
            raise
    cleared = {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}}
    kube.merge_patch(ObjectRef.of(child), cleared)
    return kube.apply(child)


def _report_transitions(body: kopf.Body, before: list[Condition], after: list[Condition]) -> bool:
    changed = transitions(before, after)
    for condition in changed:
        message = f"{condition.type}={condition.status} ({condition.reason})" + (
            f": {condition.message}" if condition.message else ""
        )
        is_bad = (condition.type == "Degraded" and condition.status == "True") or (
            condition.type in ("Fresh", "QualityOK") and condition.status == "False"
        )
        if is_bad:
            kopf.warn(body, reason=condition.reason, message=message[:1000])
        else:
            kopf.info(body, reason=condition.reason, message=message[:1000])
    return bool(changed)


OWNERSHIP_CHECKED = frozenset({"PersistentVolumeClaim"})
"""Kinds holding data: deleted only when the resource owns them (not by name alone)."""


def delete_children(kube: Kube, children: list[ObjectRef], owner_uid: str) -> list[str]:
    """Delete children explicitly (no waiting for the garbage collector); names deleted."""
    return [
        str(ref)
        for ref in children
        if kube.delete(ref, owner_uid=owner_uid if ref.kind in OWNERSHIP_CHECKED else None)
    ]
