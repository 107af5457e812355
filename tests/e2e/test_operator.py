"""The operator against a real API server: examples, children, conditions, edits, deletion."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from finlake.contracts.resources import parse_duration
from tests.conftest import free_port
from tests.e2e.conftest import NAMESPACE, Cluster, Operator, eventually

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for condition in ((obj or {}).get("status") or {}).get("conditions", []):
        if condition["type"] == kind:
            return dict(condition)
    return None


def _mark_available(cluster: Cluster, name: str) -> None:
    """Play the missing controller: report the Deployment's replicas as available."""
    deployment = cluster.get("deployment", name)
    assert deployment is not None
    counts = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1}
    generation = {"observedGeneration": deployment["metadata"]["generation"]}
    status = json.dumps({"status": counts | generation})
    cluster.kubectl(
        "patch", "deployment", name, "-n", NAMESPACE, "--subresource=status",
        "--type=merge", "-p", status,
    )  # fmt: skip


@pytest.fixture(scope="module")
def examples(cluster: Cluster, operator: Operator) -> Cluster:
    assert operator.process is not None
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(EXAMPLES))
    return cluster


def test_examples_get_their_children_owned_by_them(examples: Cluster) -> None:
    feed = examples.get("marketfeed", "us-tech")
    assert feed is not None
    deployment = eventually(lambda: examples.get("deployment", "us-tech-producer"), what="producer")
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert owner["uid"] == feed["metadata"]["uid"]
    assert owner["controller"] is True
    config_map = eventually(lambda: examples.get("configmap", "sp500-producer"), what="cm")
    assert config_map["data"]["FINLAKE_YAHOO__SYMBOLS"] == "AAPL,MSFT,NVDA,JPM,XOM"
    assert eventually(lambda: examples.get("service", "us-tech-producer-metrics"))
    assert eventually(lambda: examples.get("deployment", "simulated-producer"))
    # The real spark-operator CRDs accepted our Spark applications.
    stream = eventually(lambda: examples.get("sparkapplication", "market-stream"), what="stream")
    assert stream["spec"]["sparkVersion"] == "4.1.1"
    batch = eventually(lambda: examples.get("scheduledsparkapplication", "market-batch"))
    assert batch["spec"]["timeZone"] == "America/New_York"
    assert eventually(lambda: examples.get("scheduledsparkapplication", "market-maintenance"))
    detection = eventually(lambda: examples.get("sparkapplication", "market-alert-detection"))
    assert detection["spec"]["arguments"][:3] == [
        "alert-detection",
        "--rules",
        "/etc/finlake/rules",
    ]
    assert detection["spec"]["volumes"] == [
        {"name": "alert-rules", "configMap": {"name": "finlake-alert-rules", "optional": True}}
    ]
    assert detection["spec"]["driver"]["volumeMounts"][0]["mountPath"] == "/etc/finlake/rules"
    rules = eventually(lambda: examples.get("configmap", "finlake-alert-rules"), what="rules")
    assert set(rules["data"]) == {"big-tech-breakout.yaml", "unusual-move.yaml"}
    alerting = eventually(lambda: examples.get("deployment", "big-tech-breakout-alerting"))
    env = alerting["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "FINLAKE_SECRET_ALERTS_SLACK_WEBHOOK_URL",
        "valueFrom": {"secretKeyRef": {"name": "alerts-slack", "key": "webhook-url"}},
    } in env


def test_conditions_follow_the_children_and_events_are_posted(examples: Cluster) -> None:
    def progressing() -> dict[str, Any] | None:
        condition = _condition(examples.get("marketfeed", "us-tech"), "Progressing")
        return condition if condition and condition["status"] == "True" else None

    condition = eventually(progressing, what="Progressing=True")
    assert condition["reason"] == "ChildrenStarting"
    _mark_available(examples, "us-tech-producer")
    examples.kubectl(
        "wait", "-n", NAMESPACE, "--for=condition=Ready", "marketfeed/us-tech", "--timeout=60s"
    )
    feed = examples.get("marketfeed", "us-tech")
    assert feed is not None
    assert feed["status"]["observedGeneration"] == feed["metadata"]["generation"]
    assert feed["status"]["symbols"] == 5
    events = eventually(
        lambda: "Reconciled" in examples.kubectl(
            "get", "events", "-n", NAMESPACE, "--field-selector",
            "involvedObject.name=us-tech", "-o", "jsonpath={.items[*].reason}",
        ),
        what="a Reconciled event",
    )  # fmt: skip
    assert events


def _patch_status(cluster: Cluster, kind: str, name: str, status: dict[str, Any]) -> None:
    cluster.kubectl(
        "patch", kind, name, "-n", NAMESPACE, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def test_pipeline_is_ready_fresh_and_quality_ok_from_its_metrics(examples: Cluster) -> None:
    from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

    registry = CollectorRegistry()
    newest = Gauge(
        "finlake_pipeline_max_event_time_seconds", "", ["pipeline"], registry=registry
    )  # the names the Spark job exports (finlake_spark.metrics)
    rows = Counter("finlake_pipeline_rows", "", ["pipeline", "layer", "outcome"], registry=registry)
    newest.labels("market").set(time.time() - 30)
    rows.labels("market", "silver", "written").inc(90)
    rows.labels("market", "silver", "quarantined").inc(10)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        examples.kubectl(
            "patch", "medallionpipeline", "market", "-n", NAMESPACE, "--type=merge", "-p",
            json.dumps({"spec": {"freshness": {
                "metricsUrl": f"http://127.0.0.1:{port}/metrics", "maxQuarantineRatio": 0.2
            }}}),
        )  # fmt: skip
        for name in ("market-stream", "market-alert-detection"):
            eventually(lambda name=name: examples.get("sparkapplication", name), what=name)
            _patch_status(examples, "sparkapplication", name, {
                "applicationState": {"state": "RUNNING"}, "driverInfo": {}
            })  # fmt: skip
        for name in ("market-batch", "market-maintenance"):
            _patch_status(examples, "scheduledsparkapplication", name, {
                "scheduleState": "Scheduled",
                "lastRun": "2026-01-01T10:05:00Z",
                "lastRunName": f"{name}-1",
                "pastSuccessfulRunNames": [f"{name}-1"],
            })  # fmt: skip
        for condition in ("Ready", "Fresh", "QualityOK"):
            examples.kubectl(
                "wait", "-n", NAMESPACE, f"--for=condition={condition}",
                "medallionpipeline/market", "--timeout=60s",
            )  # fmt: skip
        pipeline = examples.get("medallionpipeline", "market")
        assert pipeline is not None
        assert pipeline["status"]["lastSuccess"] == "2026-01-01T10:05:00Z"
        lag = parse_duration(pipeline["status"]["lag"])
        assert timedelta(seconds=29) <= lag <= timedelta(minutes=5)
        newest.labels("market").set(time.time() - 3600)

        def stale() -> dict[str, Any] | None:
            condition = _condition(examples.get("medallionpipeline", "market"), "Fresh")
            return condition if condition and condition["status"] == "False" else None

        assert eventually(stale, what="Fresh=False")["reason"] == "LagOverObjective"
    finally:
        server.shutdown()
        thread.join()


def test_a_transactions_pipeline_gets_its_hourly_batch_and_no_stream(examples: Cluster) -> None:
    pipeline = examples.get("medallionpipeline", "transactions")
    assert pipeline is not None
    batch = eventually(
        lambda: examples.get("scheduledsparkapplication", "transactions-batch"), what="batch"
    )
    (owner,) = batch["metadata"]["ownerReferences"]
    assert owner["uid"] == pipeline["metadata"]["uid"]
    assert batch["spec"]["template"]["arguments"] == ["transactions-batch"]
    assert batch["spec"]["schedule"] == "0 * * * *"
    maintenance = eventually(
        lambda: examples.get("scheduledsparkapplication", "transactions-maintenance")
    )
    assert maintenance["spec"]["template"]["arguments"][-1] == "transactions.summary"
    document = eventually(lambda: examples.get("configmap", "transactions-pipeline"))
    assert "flow: transactions" in document["data"]["pipeline.yaml"]
    assert examples.get("sparkapplication", "transactions-stream") is None
    assert examples.get("service", "transactions-stream-metrics") is None


def test_transactions_freshness_comes_from_the_last_successful_batch_run(
    examples: Cluster,
) -> None:
    def condition(kind: str, reason: str) -> dict[str, Any] | None:
        found = _condition(examples.get("medallionpipeline", "transactions"), kind)
        return found if found and found["reason"] == reason else None

    # No run yet: Fresh says so; QualityOK says it is not measured (not "unreachable").
    assert eventually(lambda: condition("Fresh", "NoDataYet"))["status"] == "Unknown"
    quality = eventually(lambda: condition("QualityOK", "NotApplicable"))
    assert quality["status"] == "Unknown"
    assert "transactions.batch_runs" in quality["message"]
    batch = examples.get("scheduledsparkapplication", "transactions-batch")
    assert batch is not None
    # A run as the spark-operator creates it: the schedule's template, labelled with its name.
    finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    run = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {
            "name": "transactions-batch-1767261600000000000",
            "namespace": NAMESPACE,
            "labels": {"sparkoperator.k8s.io/scheduled-app-name": "transactions-batch"},
        },
        "spec": batch["spec"]["template"],
    }
    examples.kubectl("apply", "-f", "-", stdin=json.dumps(run))
    _patch_status(examples, "sparkapplication", run["metadata"]["name"], {
        "applicationState": {"state": "COMPLETED"}, "terminationTime": finished, "driverInfo": {},
    })  # fmt: skip
    fresh = eventually(lambda: condition("Fresh", "WithinObjective"), what="Fresh=True")
    assert fresh["status"] == "True"
    assert run["metadata"]["name"] in fresh["message"]
    pipeline = examples.get("medallionpipeline", "transactions")
    assert pipeline is not None
    assert (
        timedelta(minutes=9) <= parse_duration(pipeline["status"]["lag"]) <= timedelta(minutes=15)
    )
    examples.kubectl("delete", "sparkapplication", run["metadata"]["name"], "-n", NAMESPACE)


def refused(cluster: Cluster, kind: str, name: str, spec: str) -> str:
    """kubectl's answer to applying a ``kind`` with ``spec``, which the API server must refuse."""
    manifest = (
        f"apiVersion: finlake.io/v1alpha1\nkind: {kind}\n"
        f"metadata: {{name: {name}, namespace: {NAMESPACE}}}\nspec: {spec}\n"
    )
    answer = cluster.kubectl("apply", "-f", "-", stdin=manifest, check=False)
    assert cluster.get(kind.lower(), name) is None, answer
    return answer


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{flow: transactions, sourceTopic: market-data}", "sourceTopic is for a market pipeline"),
        ("{flow: transactions, trigger: 10s}", "trigger is for a market pipeline's stream"),
        ("{flow: transactions, detection: {enabled: true}}", "detection is for a market pipeline"),
        (
            "{flow: transactions, freshness: {metricsUrl: 'http://x:9100/metrics'}}",
            "freshness.metricsUrl reads a market pipeline's stream",
        ),
        ("{flow: market}", "layers is required for a market pipeline"),
        ("{sourceTopic: market-data}", "layers is required for a market pipeline"),
    ],
)
def test_the_schema_refuses_what_a_flow_does_not_take(
    cluster: Cluster, spec: str, message: str
) -> None:
    assert message in refused(cluster, "MedallionPipeline", "wrong-flow", spec)


def test_switching_off_detection_then_the_flow_deletes_what_is_no_longer_asked_for(
    examples: Cluster,
) -> None:
    manifest = (
        "apiVersion: finlake.io/v1alpha1\nkind: MedallionPipeline\n"
        f"metadata: {{name: switch, namespace: {NAMESPACE}}}\n"
        "spec:\n  layers:\n    bronze: {table: market.raw}\n"
        "    silver: {table: market.cleaned, quarantineTable: market.quarantine}\n"
        "    gold: {tables: [market.ohlc_1m, market.ohlc_1h]}\n"
    )
    examples.kubectl("apply", "-f", "-", stdin=manifest)
    eventually(lambda: examples.get("sparkapplication", "switch-stream"), what="stream")
    eventually(lambda: examples.get("service", "switch-stream-metrics"), what="service")
    eventually(lambda: examples.get("sparkapplication", "switch-alert-detection"), what="detection")
    examples.kubectl(
        "patch", "medallionpipeline", "switch", "-n", NAMESPACE, "--type=merge",
        "-p", '{"spec":{"detection":{"enabled":false}}}',
    )  # fmt: skip
    eventually(
        lambda: examples.get("sparkapplication", "switch-alert-detection") is None,
        what="detection switched off and deleted",
    )
    assert examples.get("sparkapplication", "switch-stream") is not None
    examples.kubectl(
        "patch", "medallionpipeline", "switch", "-n", NAMESPACE, "--type=merge",
        "-p", '{"spec":{"flow":"transactions","layers":null,"detection":null}}',
    )  # fmt: skip

    def switched() -> bool:
        batch = examples.get("scheduledsparkapplication", "switch-batch") or {}
        arguments = batch.get("spec", {}).get("template", {}).get("arguments")
        return (
            arguments == ["transactions-batch"]
            and examples.get("sparkapplication", "switch-stream") is None
            and examples.get("service", "switch-stream-metrics") is None
        )

    eventually(switched, what="the stream and its Service deleted, the batch switched")
    examples.kubectl("delete", "medallionpipeline", "switch", "-n", NAMESPACE, "--timeout=60s")
    assert examples.get("scheduledsparkapplication", "switch-batch") is None


def test_printer_columns_and_category(examples: Cluster) -> None:
    table = examples.kubectl("get", "finlake", "-n", NAMESPACE)
    assert "marketfeed.finlake.io/us-tech" in table
    assert "medallionpipeline.finlake.io/market" in table
    header = examples.kubectl("get", "mf", "-n", NAMESPACE).splitlines()[0].split()
    assert header[:5] == ["NAME", "READY", "SOURCE", "SYMBOLS", "TOPIC"]


def test_editing_a_resource_updates_its_children(examples: Cluster) -> None:
    examples.kubectl(
        "patch", "marketfeed", "us-tech", "-n", NAMESPACE, "--type=merge",
        "-p", '{"spec":{"symbols":["AAPL","IBM"],"requestBudgetPerMinute":30}}',
    )  # fmt: skip

    def updated() -> bool:
        config_map = examples.get("configmap", "us-tech-producer") or {}
        data = config_map.get("data", {})
        return (
            data.get("FINLAKE_YAHOO__SYMBOLS") == "AAPL,IBM"
            and data.get("FINLAKE_YAHOO__REQUESTS_PER_MINUTE") == "30"
        )

    eventually(updated, what="ConfigMap with the new symbols")


def test_drift_is_corrected(examples: Cluster) -> None:
    examples.kubectl(
        "patch", "deployment", "simulated-producer", "-n", NAMESPACE, "--type=merge",
        "-p", '{"spec":{"replicas":5}}',
    )  # fmt: skip
    eventually(
        lambda: (examples.get("deployment", "simulated-producer") or {})["spec"]["replicas"] == 1,
        what="the resync timer to restore replicas",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{source: yahoo}", "a yahoo feed needs exactly one of symbols or symbolsFrom"),
        ("{source: yahoo, symbols: [aapl]}", "should match"),
        ("{source: nasdaq}", 'Unsupported value: "nasdaq"'),
    ],
)
def test_invalid_resources_are_refused_by_the_schema(
    cluster: Cluster, spec: str, message: str
) -> None:
    assert message in refused(cluster, "MarketFeed", "invalid", spec)


def test_missing_reference_degrades_then_recovers(examples: Cluster) -> None:
    manifest = (
        "apiVersion: finlake.io/v1alpha1\nkind: MarketFeed\n"
        f"metadata: {{name: late-list, namespace: {NAMESPACE}}}\n"
        "spec: {source: yahoo, symbolsFrom: {name: not-yet}}\n"
    )
    examples.kubectl("apply", "-f", "-", stdin=manifest)

    def degraded() -> dict[str, Any] | None:
        condition = _condition(examples.get("marketfeed", "late-list"), "Degraded")
        return condition if condition and condition["status"] == "True" else None

    condition = eventually(degraded, what="Degraded")
    assert condition["reason"] == "ConfigMapNotFound"
    assert "spec.symbolsFrom.name: ConfigMap not-yet not found" in condition["message"]
    assert examples.get("deployment", "late-list-producer") is None
    examples.kubectl(
        "create", "configmap", "not-yet", "-n", NAMESPACE, "--from-literal=symbols=AAPL,JPM"
    )
    config_map = eventually(
        lambda: examples.get("configmap", "late-list-producer"), 90, "recovery after backoff"
    )
    assert config_map["data"]["FINLAKE_YAHOO__SYMBOLS"] == "AAPL,JPM"


def test_what_the_schema_cannot_refuse_degrades_naming_the_field(examples: Cluster) -> None:
    manifest = (
        "apiVersion: finlake.io/v1alpha1\nkind: MedallionPipeline\n"
        f"metadata: {{name: reused-table, namespace: {NAMESPACE}}}\n"
        "spec:\n  layers:\n    bronze: {table: market.raw}\n"
        "    silver: {table: market.cleaned, quarantineTable: market.quarantine}\n"
        "    gold: {tables: [market.raw]}\n"
    )
    examples.kubectl("apply", "-f", "-", stdin=manifest)

    def degraded() -> dict[str, Any] | None:
        condition = _condition(examples.get("medallionpipeline", "reused-table"), "Degraded")
        return condition if condition and condition["status"] == "True" else None

    condition = eventually(degraded, what="Degraded")
    assert condition["reason"] == "InvalidSpec"
    assert "layers.gold.tables[0]: table market.raw is already used by" in condition["message"]
    assert examples.get("sparkapplication", "reused-table-stream") is None


def test_a_paused_resource_is_left_alone_until_resumed(examples: Cluster) -> None:
    eventually(lambda: examples.get("configmap", "simulated-producer"), what="producer config")
    examples.kubectl(
        "annotate", "marketfeed", "simulated", "-n", NAMESPACE, "finlake.io/paused=true"
    )
    examples.kubectl(
        "patch", "marketfeed", "simulated", "-n", NAMESPACE, "--type=merge",
        "-p", '{"spec":{"simulate":{"symbols":7}}}',
    )  # fmt: skip

    def paused() -> dict[str, Any] | None:
        condition = _condition(examples.get("marketfeed", "simulated"), "Progressing")
        return condition if condition and condition["reason"] == "Paused" else None

    eventually(paused, what="Progressing=False (Paused)")
    config_map = examples.get("configmap", "simulated-producer")
    assert config_map is not None
    assert config_map["data"]["FINLAKE_INGESTION__SIMULATE_SYMBOLS"] == "20"
    examples.kubectl("annotate", "marketfeed", "simulated", "-n", NAMESPACE, "finlake.io/paused-")
    eventually(
        lambda: (
            (examples.get("configmap", "simulated-producer") or {})["data"][
                "FINLAKE_INGESTION__SIMULATE_SYMBOLS"
            ]
            == "7"
        ),
        what="the change once resumed",
    )


def test_deleting_a_resource_removes_its_children(examples: Cluster) -> None:
    eventually(lambda: examples.get("deployment", "unusual-move-alerting"), what="alerting")
    examples.kubectl("delete", "alertrule", "unusual-move", "-n", NAMESPACE, "--timeout=60s")
    assert examples.get("deployment", "unusual-move-alerting") is None
    rules = examples.get("configmap", "finlake-alert-rules")
    assert rules is not None
    assert set(rules["data"]) == {"big-tech-breakout.yaml"}


def test_operator_restart_mid_reconcile_converges_without_duplicates(
    examples: Cluster, operator: Operator
) -> None:
    manifest = (
        "apiVersion: finlake.io/v1alpha1\nkind: MarketFeed\n"
        f"metadata: {{name: after-restart, namespace: {NAMESPACE}}}\n"
        "spec: {source: simulate}\n"
    )
    examples.kubectl("apply", "-f", "-", stdin=manifest)
    # Killed as soon as the first child shows up: the other children are not applied yet.
    eventually(lambda: examples.get("configmap", "after-restart-producer"), 60, "first child")
    operator.stop(hard=True)
    operator.start()

    def ready() -> bool:
        feed = examples.get("marketfeed", "after-restart") or {}
        children = (feed.get("status") or {}).get("children") or []
        return len(children) == 3 and bool(
            examples.get("service", "after-restart-producer-metrics")
        )

    eventually(ready, 90, "convergence after the restart")
    for kind in ("deployments", "configmaps", "services"):
        names = examples.kubectl(
            "get", kind, "-n", NAMESPACE, "-l", "finlake.io/owner-name=after-restart",
            "-o", "jsonpath={.items[*].metadata.name}",
        ).split()  # fmt: skip
        assert len(names) == 1, (kind, names)


def test_a_standby_takes_over_when_the_active_operator_dies(
    examples: Cluster, operator: Operator, tmp_path: Path
) -> None:
    standby = Operator(examples, tmp_path / "standby.log", priority=1)
    standby.start()
    try:

        def peers() -> int:
            peering = examples.get("kopfpeering", "finlake") or {}
            return len(peering.get("status") or {})

        eventually(lambda: peers() == 2, 60, "both operators in the peering")
        # The lower priority starts paused and stays so while the active one is alive.
        assert "Resuming operations" not in standby.log.read_text()
        operator.stop(hard=True)
        manifest = (
            "apiVersion: finlake.io/v1alpha1\nkind: MarketFeed\n"
            f"metadata: {{name: standby-feed, namespace: {NAMESPACE}}}\n"
            "spec: {source: simulate}\n"
        )
        examples.kubectl("apply", "-f", "-", stdin=manifest)
        eventually(lambda: examples.get("deployment", "standby-feed-producer"), 90, "takeover")
        assert "Resuming operations" in standby.log.read_text()
    finally:
        standby.stop()
        if operator.process is None:
            operator.start()


def test_liveness_fails_when_a_watched_resource_cannot_be_listed(
    examples: Cluster, operator: Operator
) -> None:
    url = f"http://127.0.0.1:{operator.liveness_port}/healthz"
    answer = eventually(lambda: _get(url), 60, "/healthz")
    assert answer.status_code == 200
    assert answer.json()["api"] == "ok"
    # The previous test may have restarted the operator: its counters start again at its first
    # reconcile of the MarketFeed, which can come after /healthz answers.
    reconciled = 'finlake_operator_reconcile_total{kind="MarketFeed",result="ok"}'

    def counted() -> bool:
        metrics = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).text
        return reconciled in metrics

    eventually(counted, 60, "a MarketFeed reconcile counted in /metrics")
    # Last test of the session: take a watched kind away (no instances left first).
    examples.kubectl("delete", "alertrules", "--all", "-n", NAMESPACE, "--timeout=60s")
    examples.kubectl("delete", "crd", "alertrules.finlake.io", "--timeout=60s")

    def failing() -> bool:
        response = _get(url)
        return response is not None and response.status_code == 500

    eventually(failing, 60, "/healthz to fail")


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=15)
    except httpx.HTTPError:
        return None
