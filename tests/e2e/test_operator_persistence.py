"""spec.persistence on a real API server: claims created, mounted, refused edits, removal."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import NAMESPACE, Cluster, condition_of, eventually, mark_available

RULE = (
    "apiVersion: finlake.io/v1alpha1\nkind: AlertRule\n"
    f"metadata: {{name: kept, namespace: {NAMESPACE}}}\n"
    "spec:\n  symbols: [AAPL]\n"
    "  condition: {type: price_cross, level: 250, direction: above}\n"
)


def _patch(
    cluster: Cluster, kind: str, name: str, spec: dict[str, Any], *, check: bool = True
) -> str:
    return cluster.kubectl(
        "patch", kind, name, "-n", NAMESPACE, "--type=merge",
        "-p", json.dumps({"spec": spec}), check=check,
    )  # fmt: skip


def _pod(cluster: Cluster, deployment: str) -> dict[str, Any] | None:
    found = cluster.get("deployment", deployment)
    return found["spec"]["template"]["spec"] if found else None


def _degraded(cluster: Cluster, kind: str, name: str) -> dict[str, Any] | None:
    condition = condition_of(cluster.get(kind, name), "Degraded")
    return condition if condition and condition["status"] == "True" else None


def _status(cluster: Cluster, kind: str, name: str) -> object:
    return (cluster.get(kind, name) or {}).get("status")


def _gone(cluster: Cluster, name: str) -> bool:
    # Without a controller manager nothing lifts the claim's in-use protection finalizer: a
    # deleted claim stays, marked for deletion.
    claim = cluster.get("persistentvolumeclaim", name)
    return claim is None or "deletionTimestamp" in claim["metadata"]


def test_a_rule_gains_a_claim_then_loses_it_and_its_deployment_follows(examples: Cluster) -> None:
    examples.kubectl("apply", "-f", "-", stdin=RULE)
    eventually(lambda: _pod(examples, "kept-alerting"), what="alerting Deployment")
    mark_available(examples, "kept-alerting")
    eventually(
        lambda: (
            (condition_of(examples.get("alertrule", "kept"), "Ready") or {}).get("status") == "True"
        ),
        what="Ready on the pod's own disk",
    )
    before = examples.get("deployment", "kept-alerting")
    assert before is not None
    # The API server defaulted rollingUpdate, under no field manager: an apply of Recreate that
    # omits it is refused until it is removed (the operator does, then applies again).
    assert before["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "rollingUpdate" in before["spec"]["strategy"]
    _patch(examples, "alertrule", "kept", {"persistence": {"size": "2Gi"}})

    def on_claim() -> dict[str, Any] | None:
        pod = _pod(examples, "kept-alerting") or {}
        state = next(v for v in pod.get("volumes", []) if v["name"] == "state")
        return pod if "persistentVolumeClaim" in state else None

    pod = eventually(
        on_claim,
        what=lambda: (
            f"the Deployment mounting the claim ({_status(examples, 'alertrule', 'kept')})"
        ),
    )
    assert pod["securityContext"]["fsGroup"] == 10001
    deployment = examples.get("deployment", "kept-alerting")
    assert deployment is not None
    # Switched to Recreate on a server-side apply: the defaulted rollingUpdate went too.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    claim = examples.get("persistentvolumeclaim", "kept-alerting-state")
    assert claim is not None
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    (owner,) = claim["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("AlertRule", "kept")

    # The class of an existing claim cannot change: the schema says so at once.
    answer = _patch(
        examples, "alertrule", "kept", {"persistence": {"storageClassName": "other"}}, check=False
    )
    assert "storageClassName cannot change once the claim exists" in answer

    # The API server refuses to shrink (or, unbound, to resize) a claim: Degraded names it.
    _patch(examples, "alertrule", "kept", {"persistence": {"size": "1Gi"}})
    condition = eventually(lambda: _degraded(examples, "alertrule", "kept"), 90, "Degraded")
    assert condition["reason"] == "ApplyFailed"
    assert (
        f"PersistentVolumeClaim {NAMESPACE}/kept-alerting-state was refused"
        in (condition["message"])
    )
    # The refused claim holds back no other child: a deleted Deployment comes back meanwhile.
    examples.kubectl("delete", "deployment", "kept-alerting", "-n", NAMESPACE)
    eventually(lambda: _pod(examples, "kept-alerting"), 90, "the Deployment recreated")
    mark_available(examples, "kept-alerting")
    _patch(examples, "alertrule", "kept", {"persistence": {"size": "2Gi"}})
    eventually(
        lambda: _degraded(examples, "alertrule", "kept") is None, 120, "recovered after backoff"
    )

    # persistence removed: back to the pod's disk, rolling again, the claim deleted.
    _patch(examples, "alertrule", "kept", {"persistence": None})
    pod = eventually(
        lambda: (
            (p := _pod(examples, "kept-alerting"))
            and {"name": "state", "emptyDir": {}} in p["volumes"]
            and p
        ),
        what="the Deployment back on an emptyDir",
    )
    assert "fsGroup" not in pod["securityContext"]
    deployment = examples.get("deployment", "kept-alerting")
    assert deployment is not None
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    eventually(lambda: _gone(examples, "kept-alerting-state"), what="claim deleted")
    examples.kubectl("delete", "alertrule", "kept", "-n", NAMESPACE, "--timeout=60s")


def test_a_pipeline_s_streaming_jobs_get_checkpoints_claims_on_their_drivers(
    examples: Cluster,
) -> None:
    manifest = (
        "apiVersion: finlake.io/v1alpha1\nkind: MedallionPipeline\n"
        f"metadata: {{name: durable, namespace: {NAMESPACE}}}\n"
        "spec:\n  layers:\n    bronze: {table: market.raw}\n"
        "    silver: {table: market.cleaned, quarantineTable: market.quarantine}\n"
        "    gold: {tables: [market.ohlc_1m]}\n"
        "  persistence: {size: 5Gi, storageClassName: standard}\n"
    )
    examples.kubectl("apply", "-f", "-", stdin=manifest)
    for job in ("stream", "alert-detection"):
        claim = eventually(
            lambda job=job: examples.get("persistentvolumeclaim", f"durable-{job}-checkpoints"),
            what=f"{job} claim",
        )
        assert claim["spec"]["storageClassName"] == "standard"
        application = examples.get("sparkapplication", f"durable-{job}")
        assert application is not None
        spec = application["spec"]
        assert {
            "name": "state",
            "persistentVolumeClaim": {"claimName": f"durable-{job}-checkpoints"},
        } in spec["volumes"]
        assert {"name": "state", "mountPath": "/var/lib/finlake"} in spec["driver"]["volumeMounts"]
        assert spec["driver"]["podSecurityContext"]["fsGroup"] == 185
    # Detection switched off: its claim goes with it, the stream keeps its own.
    _patch(examples, "medallionpipeline", "durable", {"detection": {"enabled": False}})
    eventually(
        lambda: (
            examples.get("sparkapplication", "durable-alert-detection") is None
            and _gone(examples, "durable-alert-detection-checkpoints")
        ),
        what="detection and its claim deleted",
    )
    stream = examples.get("persistentvolumeclaim", "durable-stream-checkpoints")
    assert stream is not None
    assert "deletionTimestamp" not in stream["metadata"]
    # A transactions pipeline has no stream: the schema refuses persistence there.
    answer = _patch(
        examples, "medallionpipeline", "durable",
        {"flow": "transactions", "layers": None, "detection": None},
        check=False,
    )  # fmt: skip
    assert "persistence is for a market pipeline's stream" in answer
    examples.kubectl("delete", "medallionpipeline", "durable", "-n", NAMESPACE, "--timeout=60s")
    assert _gone(examples, "durable-stream-checkpoints")


def test_a_feed_with_persistence_runs_one_producer_on_its_claim(examples: Cluster) -> None:
    manifest = (
        "apiVersion: finlake.io/v1alpha1\nkind: MarketFeed\n"
        f"metadata: {{name: watermarks, namespace: {NAMESPACE}}}\n"
        "spec:\n  source: yahoo\n  symbols: [AAPL]\n  producer: {persistence: {}}\n"
    )
    examples.kubectl("apply", "-f", "-", stdin=manifest)
    claim = eventually(
        lambda: examples.get("persistentvolumeclaim", "watermarks-producer-state"), what="claim"
    )
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    pod = eventually(lambda: _pod(examples, "watermarks-producer"), what="producer")
    claim_volume = {"persistentVolumeClaim": {"claimName": "watermarks-producer-state"}}
    assert {"name": "state", **claim_volume} in pod["volumes"]
    answer = _patch(
        examples, "marketfeed", "watermarks", {"source": "simulate", "producer": {"replicas": 2}},
        check=False,
    )  # fmt: skip
    assert "a producer with persistence runs as one replica" in answer
    examples.kubectl("delete", "marketfeed", "watermarks", "-n", NAMESPACE, "--timeout=60s")
    assert _gone(examples, "watermarks-producer-state")


def test_a_claim_the_resource_does_not_own_is_never_deleted(examples: Cluster) -> None:
    # Someone's own claim under the name a rule without persistence would delete as left over.
    claim = (
        "apiVersion: v1\nkind: PersistentVolumeClaim\n"
        f"metadata: {{name: squat-alerting-state, namespace: {NAMESPACE}}}\n"
        "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"
    )
    examples.kubectl("apply", "-f", "-", stdin=claim)
    examples.kubectl("apply", "-f", "-", stdin=RULE.replace("name: kept", "name: squat"))
    eventually(lambda: _pod(examples, "squat-alerting"), what="the rule reconciled")
    examples.kubectl("delete", "alertrule", "squat", "-n", NAMESPACE, "--timeout=60s")
    assert examples.get("deployment", "squat-alerting") is None
    found = examples.get("persistentvolumeclaim", "squat-alerting-state")
    assert found is not None
    assert "deletionTimestamp" not in found["metadata"]
    examples.kubectl(
        "delete", "persistentvolumeclaim", "squat-alerting-state", "-n", NAMESPACE, "--wait=false"
    )
