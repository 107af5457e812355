"""spec.persistence: a claim per stateful part, mounted where the part keeps its state."""

from typing import Any

import pytest
from pydantic import ValidationError

from finlake.contracts.alert_rule import AlertRuleSpec
from finlake.contracts.market_feed import MarketFeedSpec
from finlake.contracts.medallion_pipeline import MedallionPipelineSpec
from finlake_operator.builders.alert_rule import STATE_MOUNT, build_alerting_deployment
from finlake_operator.builders.common import Owner
from finlake_operator.builders.market_feed import build_market_feed_children
from finlake_operator.builders.medallion_pipeline import build_medallion_pipeline_children
from finlake_operator.handlers.alert_rule import rule_plan, state_claim_ref
from finlake_operator.kube import ObjectRef

FEED = Owner(kind="MarketFeed", name="us-tech", namespace="markets", uid="uid-1")
PIPELINE = Owner(kind="MedallionPipeline", name="market", namespace="markets", uid="uid-2")
RULE = Owner(kind="AlertRule", name="breakout", namespace="markets", uid="uid-3")
LAYERS = {
    "bronze": {"table": "market.raw"},
    "silver": {"table": "market.cleaned", "quarantineTable": "market.quarantine"},
    "gold": {"tables": ["market.ohlc_1m"]},
}
RULE_SPEC: dict[str, Any] = {
    "symbols": ["AAPL"],
    "condition": {"type": "price_cross", "level": 250, "direction": "above"},
}


def _named(children: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_a_rule_with_persistence_keeps_its_service_state_on_its_own_claim() -> None:
    rule = AlertRuleSpec.model_validate(
        {**RULE_SPEC, "persistence": {"size": "2Gi", "storageClassName": "fast-ssd"}}
    )
    plan = rule_plan(RULE, rule, "alerting:1")
    children = _named(plan.children)
    claim = children["PersistentVolumeClaim", "breakout-alerting-state"]
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "2Gi"}},
        "storageClassName": "fast-ssd",
    }
    assert claim["metadata"]["ownerReferences"][0]["uid"] == "uid-3"
    assert plan.children.index(claim) == 0  # before the pod that mounts it
    deployment = children["Deployment", "breakout-alerting"]
    pod = _pod(deployment)
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "breakout-alerting-state"}} in (
        pod["volumes"]
    )
    assert {"name": "state", "mountPath": STATE_MOUNT} in pod["containers"][0]["volumeMounts"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    # One writer of the claim: the old pod stops before the new one starts.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert plan.obsolete == []


def test_without_persistence_the_state_is_the_pod_s_and_a_left_over_claim_is_deleted() -> None:
    rule = AlertRuleSpec.model_validate(RULE_SPEC)
    deployment = build_alerting_deployment(RULE, rule)
    pod = _pod(deployment)
    assert {"name": "state", "emptyDir": {}} in pod["volumes"]
    assert "fsGroup" not in pod["securityContext"]
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
    plan = rule_plan(RULE, rule, "alerting:1")
    assert "PersistentVolumeClaim" not in {c["kind"] for c in plan.children}
    assert plan.obsolete == [
        ObjectRef("v1", "PersistentVolumeClaim", "markets", "breakout-alerting-state")
    ]
    assert plan.obsolete == [state_claim_ref(RULE)]


def test_a_pipeline_with_persistence_gives_each_streaming_driver_its_checkpoints_claim() -> None:
    pipeline = MedallionPipelineSpec.model_validate({"layers": LAYERS, "persistence": {}})
    children = build_medallion_pipeline_children(PIPELINE, pipeline)
    named = _named(children)
    for job, claim_name in (
        ("market-stream", "market-stream-checkpoints"),
        ("market-alert-detection", "market-alert-detection-checkpoints"),
    ):
        claim = named["PersistentVolumeClaim", claim_name]
        assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
        assert "storageClassName" not in claim["spec"]  # the cluster's default class
        application = named["SparkApplication", job]
        assert children.index(claim) < children.index(application)
        spec = application["spec"]
        volume = {"name": "state", "persistentVolumeClaim": {"claimName": claim_name}}
        assert volume in spec["volumes"]
        driver = spec["driver"]
        assert {"name": "state", "mountPath": "/var/lib/finlake"} in driver["volumeMounts"]
        assert {"name": "FINLAKE_HOME", "value": "/var/lib/finlake"} in driver["env"]
        names = [variable["name"] for variable in driver["env"]]
        assert names == sorted(names)
        assert driver["podSecurityContext"] == {
            "fsGroup": 185,
            "fsGroupChangePolicy": "OnRootMismatch",
        }
        assert "volumeMounts" not in spec["executor"]
    # The batch and the maintenance keep no checkpoint: their $FINLAKE_HOME is the pod's.
    for scheduled in ("market-batch", "market-maintenance"):
        template = named["ScheduledSparkApplication", scheduled]["spec"]["template"]
        assert template["volumes"] == [{"name": "state", "emptyDir": {}}]
        assert "podSecurityContext" not in template["driver"]
    # Detection keeps its rules mount next to the claim.
    detection = named["SparkApplication", "market-alert-detection"]["spec"]
    assert [volume["name"] for volume in detection["volumes"]] == ["state", "alert-rules"]


def test_a_pipeline_without_persistence_or_detection_builds_no_claim_for_them() -> None:
    plain = MedallionPipelineSpec.model_validate({"layers": LAYERS})
    kinds = [c["kind"] for c in build_medallion_pipeline_children(PIPELINE, plain)]
    assert "PersistentVolumeClaim" not in kinds
    stream = _named(build_medallion_pipeline_children(PIPELINE, plain))[
        "SparkApplication", "market-stream"
    ]
    # $FINLAKE_HOME is the driver pod's own writable disk (the platform ConfigMap names a
    # folder the Spark image's user could not create).
    assert stream["spec"]["volumes"] == [{"name": "state", "emptyDir": {}}]
    driver = stream["spec"]["driver"]
    assert {"name": "state", "mountPath": "/var/lib/finlake"} in driver["volumeMounts"]
    assert {"name": "FINLAKE_HOME", "value": "/var/lib/finlake"} in driver["env"]
    assert "podSecurityContext" not in driver
    no_detection = MedallionPipelineSpec.model_validate(
        {"layers": LAYERS, "persistence": {}, "detection": {"enabled": False}}
    )
    claims = [
        c["metadata"]["name"]
        for c in build_medallion_pipeline_children(PIPELINE, no_detection)
        if c["kind"] == "PersistentVolumeClaim"
    ]
    assert claims == ["market-stream-checkpoints"]


def test_a_transactions_pipeline_refuses_persistence() -> None:
    with pytest.raises(ValidationError, match="persistence is for a market pipeline's stream"):
        MedallionPipelineSpec.model_validate({"flow": "transactions", "persistence": {}})


def test_a_feed_with_persistence_keeps_its_watermarks_on_its_claim_with_one_producer() -> None:
    feed = MarketFeedSpec.model_validate(
        {"source": "simulate", "producer": {"persistence": {"size": "512Mi"}}}
    )
    children = build_market_feed_children(FEED, feed, ())
    assert children[0]["kind"] == "PersistentVolumeClaim"
    assert children[0]["metadata"]["name"] == "us-tech-producer-state"
    deployment = _named(children)["Deployment", "us-tech-producer"]
    pod = _pod(deployment)
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "us-tech-producer-state"}} in (
        pod["volumes"]
    )
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert pod["securityContext"]["fsGroup"] == 10001
    # A simulated feed without persistence rolls; with it, one producer writes its state.
    plain = MarketFeedSpec.model_validate({"source": "simulate"})
    rolling = _named(build_market_feed_children(FEED, plain, ()))["Deployment", "us-tech-producer"]
    assert rolling["spec"]["strategy"] == {"type": "RollingUpdate"}
    with pytest.raises(ValidationError, match="runs as one replica"):
        MarketFeedSpec.model_validate(
            {"source": "simulate", "producer": {"replicas": 2, "persistence": {}}}
        )


def test_sizes_above_zero_with_a_unit_are_taken() -> None:
    for size in ("512Mi", "1Gi", "1.5Ti", "10G", "0.5Gi"):
        assert AlertRuleSpec.model_validate({**RULE_SPEC, "persistence": {"size": size}})


@pytest.mark.parametrize(
    ("persistence", "problem"),
    [
        ({"size": "lots"}, "size"),
        ({"size": "0Gi"}, "size"),
        ({"size": "100m"}, "size"),
        ({"size": "1073741824"}, "size"),
        ({"storageClassName": "Fast_SSD"}, "storageClassName"),
        ({"size": "1Gi", "accessModes": ["ReadWriteMany"]}, "accessModes"),
    ],
)
def test_bad_persistence_is_refused_naming_the_field(
    persistence: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        AlertRuleSpec.model_validate({**RULE_SPEC, "persistence": persistence})
