from datetime import timedelta
from typing import Any

from finlake.contracts.medallion_pipeline import FreshnessSpec
from finlake_operator.freshness import evaluate_freshness
from finlake_operator.observe import availability_conditions, observe_child
from finlake_operator.status import Condition, merge_condition, transitions

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def _condition(status: str, time: str, reason: str = "Reconciled") -> Condition:
    return Condition.model_validate(
        {"type": "Ready", "status": status, "reason": reason, "lastTransitionTime": time}
    )


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = merge_condition([], _condition("False", T0), now=T0)
    same = merge_condition(first, _condition("False", T1, "Other"), now=T1)
    assert same[0].last_transition_time == T0
    assert same[0].reason == "Other"
    flipped = merge_condition(same, _condition("True", T1), now=T1)
    assert flipped[0].last_transition_time == T1
    assert [c.type for c in transitions(same, flipped)] == ["Ready"]
    assert transitions(flipped, flipped) == []


def _deployment(available: int, generation: int = 2, observed: int = 2) -> dict[str, object]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "d", "generation": generation},
        "spec": {"replicas": 1},
        "status": {
            "replicas": 1,
            "updatedReplicas": 1,
            "availableReplicas": available,
            "observedGeneration": observed,
        },
    }


def test_children_drive_ready_progressing_degraded() -> None:
    desired = {"kind": "Deployment", "metadata": {"name": "d"}}
    waiting = observe_child(desired, _deployment(0))
    ready = observe_child(desired, _deployment(1))
    stale = observe_child(desired, _deployment(1, generation=3))
    assert (waiting.is_ready, ready.is_ready, stale.is_ready) == (False, True, False)
    spark = {"kind": "SparkApplication", "metadata": {"name": "s"}}
    failed = observe_child(
        spark, {"status": {"applicationState": {"state": "FAILED", "errorMessage": "oom"}}}
    )
    assert failed.is_failed
    by_type = {c.type: c for c in availability_conditions([ready, waiting], 2, T0)}
    assert (by_type["Ready"].status, by_type["Progressing"].status) == ("False", "True")
    by_type = {c.type: c for c in availability_conditions([ready, failed], 2, T0)}
    assert by_type["Degraded"].status == "True"
    assert "SparkApplication s is Failed: oom" in by_type["Degraded"].message
    by_type = {c.type: c for c in availability_conditions([ready], 2, T0)}
    assert by_type["Ready"].status == "True"
    assert by_type["Ready"].observed_generation == 2


METRICS = """
# TYPE finlake_pipeline_max_event_time_seconds gauge
finlake_pipeline_max_event_time_seconds{pipeline="market"} 1000.0
# TYPE finlake_pipeline_rows_total counter
finlake_pipeline_rows_total{pipeline="market",layer="silver",outcome="written"} 90.0
finlake_pipeline_rows_total{pipeline="market",layer="silver",outcome="quarantined"} 10.0
"""


def test_freshness_and_quality_from_metrics() -> None:
    objective = FreshnessSpec(max_lag=timedelta(minutes=5), max_quarantine_ratio=0.2)
    result = evaluate_freshness(METRICS, objective, now_s=1060.0, now=T0, generation=1)
    by_type = {c.type: c for c in result.conditions}
    assert by_type["Fresh"].status == "True"
    assert result.lag == "1m"
    assert by_type["QualityOK"].status == "True"
    strict = FreshnessSpec(max_lag=timedelta(seconds=30), max_quarantine_ratio=0.05)
    result = evaluate_freshness(METRICS, strict, now_s=1060.0, now=T0, generation=1)
    by_type = {c.type: c for c in result.conditions}
    assert (by_type["Fresh"].status, by_type["Fresh"].reason) == ("False", "LagOverObjective")
    assert by_type["QualityOK"].reason == "QuarantineOverObjective"
    unknown = evaluate_freshness(None, strict, now_s=0, now=T0, generation=1)
    assert {c.status for c in unknown.conditions} == {"Unknown"}


def test_a_metrics_endpoint_answering_html_is_unknown_not_a_crash() -> None:
    objective = FreshnessSpec(max_lag=timedelta(minutes=5), max_quarantine_ratio=0.2)
    page = "<html><body>502 Bad Gateway</body></html>"
    result = evaluate_freshness(page, objective, now_s=0, now=T0, generation=1)
    assert {(c.status, c.reason) for c in result.conditions} == {("Unknown", "MetricsUnreachable")}
    assert all("not in Prometheus' text format" in c.message for c in result.conditions)


def _run(name: str, state: str, finished: str | None = None, **status: object) -> dict[str, object]:
    return {
        "metadata": {"name": name, "creationTimestamp": f"2026-01-01T{name[-5:]}:00Z"},
        "status": {
            "applicationState": {"state": state, **status},
            **({"terminationTime": finished} if finished else {}),
        },
    }


def test_transactions_freshness_follows_the_last_successful_batch_run() -> None:
    from datetime import UTC, datetime

    from finlake_operator.freshness import evaluate_batch_freshness

    objective = FreshnessSpec(max_lag=timedelta(minutes=90))
    noon = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    runs = [
        _run("tx-batch-10:00", "COMPLETED", "2026-01-01T10:08:00Z"),
        _run("tx-batch-11:00", "COMPLETED", "2026-01-01T11:07:30Z"),
        _run("tx-batch-12:00", "RUNNING"),
    ]
    result = evaluate_batch_freshness(runs, objective, noon, T0, 3)
    by_type = {c.type: c for c in result.conditions}
    assert (by_type["Fresh"].status, by_type["Fresh"].reason) == ("True", "WithinObjective")
    assert "tx-batch-11:00 finished 52m30s ago" in by_type["Fresh"].message
    assert result.lag == "52m30s"
    assert by_type["Fresh"].observed_generation == 3
    # Never stuck Unknown as if the metrics were unreachable: not measured, and said so.
    quality = by_type["QualityOK"]
    assert (quality.status, quality.reason) == ("Unknown", "NotApplicable")
    assert "transactions.batch_runs" in quality.message
    # Two hours later, with the runs after 11:00 failing: stale.
    later = evaluate_batch_freshness(
        [*runs[:2], _run("tx-batch-13:00", "FAILED")], objective, noon + 7200, T0, 3
    )
    fresh = {c.type: c for c in later.conditions}["Fresh"]
    assert (fresh.status, fresh.reason) == ("False", "LagOverObjective")
    assert later.lag == "2h52m30s"


def test_transactions_freshness_before_any_successful_run() -> None:
    from finlake_operator.freshness import evaluate_batch_freshness

    objective = FreshnessSpec(max_lag=timedelta(minutes=90))
    nothing = evaluate_batch_freshness([], objective, 0.0, T0, 1)
    fresh = {c.type: c for c in nothing.conditions}["Fresh"]
    assert (fresh.status, fresh.reason) == ("Unknown", "NoDataYet")
    running = evaluate_batch_freshness([_run("tx-batch-10:00", "RUNNING")], objective, 0, T0, 1)
    assert {c.type: c for c in running.conditions}["Fresh"].reason == "NoDataYet"
    failing = [
        _run("tx-batch-10:00", "FAILED", "2026-01-01T10:01:00Z", errorMessage="old"),
        _run("tx-batch-11:00", "FAILED", "2026-01-01T11:01:00Z", errorMessage="no catalog"),
    ]
    failed = evaluate_batch_freshness(failing, objective, 0.0, T0, 1)
    fresh = {c.type: c for c in failed.conditions}["Fresh"]
    assert (fresh.status, fresh.reason) == ("False", "NoSuccessfulRun")
    assert fresh.message == (
        "no batch run succeeded yet; 2 failed, the last: tx-batch-11:00 (no catalog)"
    )
    assert failed.lag is None


# spark-operator v2.5.2 right after it started the 11:05 run: lastRunName is that new run, and
# pastSuccessfulRunNames lists only COMPLETED runs, so the two never meet.
SCHEDULE_STATUS = {
    "scheduleState": "Scheduled",
    "lastRun": "2026-01-01T11:05:00Z",
    "lastRunName": "market-batch-11:05",
    "pastSuccessfulRunNames": ["market-batch-10:05", "market-batch-09:05"],
    "nextRun": "2026-01-01T12:05:00Z",
}
BATCH_RUNS = [
    _run("market-batch-11:05", "RUNNING"),
    _run("market-batch-10:05", "COMPLETED", "2026-01-01T10:41:00Z"),
    _run("market-batch-09:05", "COMPLETED", "2026-01-01T09:39:00Z"),
]


def test_last_success_is_when_the_newest_completed_run_finished() -> None:
    from finlake_operator.freshness import last_success

    assert last_success(BATCH_RUNS) == "2026-01-01T10:41:00Z"
    assert last_success([_run("market-batch-12:05", "FAILED", "2026-01-01T12:06:00Z")]) is None
    assert last_success([]) is None


def test_a_market_pipeline_reports_its_last_successful_batch_run() -> None:
    from finlake.contracts.medallion_pipeline import MedallionPipelineSpec
    from finlake_operator.builders.common import Owner
    from finlake_operator.handlers.medallion_pipeline import plan_medallion_pipeline
    from finlake_operator.kube import ObjectRef

    class SparkOperatorState:
        """The schedule as the spark-operator leaves it, and its runs (the batch's label)."""

        def get(self, ref: ObjectRef) -> dict[str, Any] | None:
            if ref.kind == "ScheduledSparkApplication":
                return {"status": SCHEDULE_STATUS}
            return None

        def list(self, ref: ObjectRef, selector: str) -> list[dict[str, Any]]:
            assert ref.kind == "SparkApplication"
            assert selector == "sparkoperator.k8s.io/scheduled-app-name=market-batch"
            return BATCH_RUNS

    owner = Owner(kind="MedallionPipeline", name="market", namespace="markets", uid="uid-2")
    layers = {
        "bronze": {"table": "market.raw"},
        "silver": {"table": "market.cleaned", "quarantineTable": "market.quarantine"},
        "gold": {"tables": ["market.ohlc_1m"]},
    }
    unreachable = {"metricsUrl": "http://127.0.0.1:9/metrics"}  # discard port: refused at once
    pipeline = MedallionPipelineSpec.model_validate({"layers": layers, "freshness": unreachable})
    plan = plan_medallion_pipeline(owner, pipeline, SparkOperatorState(), metrics_timeout_s=0.5)  # type: ignore[arg-type]
    assert plan.extra_conditions is not None
    plan.extra_conditions([], T0)  # after the children are applied
    assert plan.summary["lastSuccess"] == "2026-01-01T10:41:00Z"


def _rollout(**status: object) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "f-producer", "generation": 2},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 2, **status},
    }


def test_a_deployment_is_ready_only_once_its_rollout_is_done() -> None:
    desired = {"kind": "Deployment", "metadata": {"name": "f-producer"}}
    deadline = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "f-producer-7d9" has timed out progressing.',
    }
    # The old pod still serves, the new one crash-loops past the progress deadline: failed.
    failed = observe_child(desired, _rollout(
        replicas=2, updatedReplicas=1, availableReplicas=1, unavailableReplicas=1,
        conditions=[{"type": "Available", "status": "True"}, deadline],
    ))  # fmt: skip
    assert (failed.is_ready, failed.is_failed) == (False, True)
    by_type = {c.type: c for c in availability_conditions([failed], 2, T0)}
    assert by_type["Degraded"].status == "True"
    assert 'ReplicaSet "f-producer-7d9" has timed out progressing.' in by_type["Degraded"].message
    # Within the deadline: the new pod is not available yet, or an old one is still there.
    for status in (
        {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 0},
        {"replicas": 2, "updatedReplicas": 1, "availableReplicas": 1},
        {"replicas": 1, "updatedReplicas": 0, "availableReplicas": 1},
    ):
        waiting = observe_child(desired, _rollout(**status))
        assert (waiting.is_ready, waiting.is_failed, waiting.state.state) == (
            False, False, "Progressing",
        ), status  # fmt: skip
    done = observe_child(desired, _rollout(replicas=1, updatedReplicas=1, availableReplicas=1))
    assert (done.is_ready, done.state.state) == (True, "Available")
    # A deadline the controller has not re-evaluated for this generation is not this rollout's.
    stale = _rollout(conditions=[deadline])
    stale["status"]["observedGeneration"] = 1
    assert observe_child(desired, stale).is_failed is False


def test_a_suspended_schedule_counts_as_ready_and_says_so() -> None:
    desired = {"kind": "ScheduledSparkApplication", "metadata": {"name": "p-batch"}}
    # The spark-operator returns before writing any status while a schedule is suspended.
    suspended = observe_child(desired, {"spec": {"suspend": True}, "status": {}})
    assert (suspended.is_ready, suspended.state.state) == (True, "Suspended")
    by_type = {c.type: c for c in availability_conditions([suspended], 1, T0)}
    assert by_type["Ready"].status == "True"
    assert "ScheduledSparkApplication p-batch is suspended" in by_type["Ready"].message
    not_yet = observe_child(desired, {"spec": {"suspend": False}, "status": {}})
    assert (not_yet.is_ready, not_yet.state.state) == (False, "Pending")


def test_a_schedule_stuck_in_failed_validation_is_recreated_once_its_spec_changes() -> None:
    from finlake_operator.observe import needs_recreation

    desired = {"spec": {"schedule": "5 * * * *", "timeZone": "Europe/Paris", "suspend": False}}
    stuck = {
        "spec": {"schedule": "5 * * * *", "timeZone": "Europe/Pari"},
        "status": {"scheduleState": "FailedValidation", "reason": "Invalid timezone"},
    }
    assert needs_recreation(desired, stuck) is True
    # The same (still invalid) schedule, a healthy one, none yet: left to the apply.
    assert needs_recreation({"spec": stuck["spec"]}, stuck) is False
    assert needs_recreation(desired, {**stuck, "status": {"scheduleState": "Scheduled"}}) is False
    assert needs_recreation(desired, None) is False
