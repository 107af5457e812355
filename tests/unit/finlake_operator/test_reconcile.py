"""Applying one child: API errors become Degraded, a schedule stuck on an old spec is replaced."""

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from finlake_operator.kube import ObjectRef
from finlake_operator.reconcile import Degradation, _apply

SCHEDULE = {
    "apiVersion": "sparkoperator.k8s.io/v1beta2",
    "kind": "ScheduledSparkApplication",
    "metadata": {"name": "market-batch", "namespace": "markets"},
    "spec": {"schedule": "5 * * * *", "timeZone": "Europe/Paris", "suspend": False},
}


class Refusing:
    """An API server answering every apply with ``status`` and its own message."""

    def __init__(self, status: int, message: str) -> None:
        self.error = ApiException(status=status, reason="Internal Server Error")
        self.error.body = json.dumps({"kind": "Status", "message": message})

    def get(self, _: ObjectRef) -> dict[str, Any] | None:
        return None

    def apply(self, _: dict[str, Any]) -> dict[str, Any]:
        raise self.error


def test_a_server_error_on_apply_is_degraded_with_its_message_and_retried() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "rule-alerting", "namespace": "markets"},
    }
    message = (
        'failed to create typed patch object: .spec...env: duplicate entries for key [name="X"]'
    )
    with pytest.raises(Degradation) as raised:
        _apply(Refusing(500, message), deployment)  # type: ignore[arg-type]
    assert raised.value.reason == "ApplyFailed"
    assert raised.value.retry is True  # with backoff, as any other failure
    assert raised.value.message == (
        f"Deployment markets/rule-alerting could not be applied (HTTP 500): {message}"
    )


class SparkOperatorKeptIt:
    """The live schedule: stuck in FailedValidation on an older time zone."""

    def __init__(self, live_time_zone: str) -> None:
        self.live = {
            "spec": {**SCHEDULE["spec"], "timeZone": live_time_zone},  # type: ignore[dict-item]
            "status": {"scheduleState": "FailedValidation", "reason": "Invalid timezone"},
        }
        self.calls: list[str] = []

    def get(self, _: ObjectRef) -> dict[str, Any] | None:
        return self.live

    def delete(self, ref: ObjectRef, **_: Any) -> bool:
        self.calls.append(f"delete {ref.name}")
        return True

    def apply(self, child: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"apply {child['metadata']['name']}")
        return {**child, "status": {}}


def test_a_schedule_stuck_in_failed_validation_is_deleted_before_the_fixed_one_is_applied() -> None:
    stuck = SparkOperatorKeptIt("Europe/Pari")
    _apply(stuck, SCHEDULE)  # type: ignore[arg-type]
    assert stuck.calls == ["delete market-batch", "apply market-batch"]
    unchanged = SparkOperatorKeptIt("Europe/Paris")  # no fix yet: a new one would fail alike
    _apply(unchanged, SCHEDULE)  # type: ignore[arg-type]
    assert unchanged.calls == ["apply market-batch"]
