"""The operator against a real API server: the examples' children, conditions, events, pipelines."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from finlake.contracts.resources import parse_duration
from tests.conftest import free_port
from tests.e2e.conftest import (
    NAMESPACE,
    Cluster,
    condition_of,
    eventually,
    mark_available,
    refused,
)


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
    # The example keeps its checkpoints on claims (spec.persistence), the rules next to them.
    assert detection["spec"]["volumes"] == [
        {
            "name": "state",
            "persistentVolumeClaim": {"claimName": "market-alert-detection-checkpoints"},
        },
        {"name": "alert-rules", "configMap": {"name": "finlake-alert-rules", "optional": True}},
    ]
    mounts = [mount["mountPath"] for mount in detection["spec"]["driver"]["volumeMounts"]]
    assert mounts == ["/var/lib/finlake", "/etc/finlake/rules"]
    for claim in ("market-stream-checkpoints", "market-alert-detection-checkpoints"):
        found = eventually(lambda claim=claim: examples.get("persistentvolumeclaim", claim))
        assert found["spec"]["resources"]["requests"]["storage"] == "5Gi"
    rules = eventually(lambda: examples.get("configmap", "finlake-alert-rules"), what="rules")
    assert set(rules["data"]) == {"big-tech-breakout.yaml", "unusual-move.yaml"}
    alerting = eventually(lambda: examples.get("deployment", "big-tech-breakout-alerting"))
    assert eventually(
        lambda: examples.get("persistentvolumeclaim", "big-tech-breakout-alerting-state")
    )
    env = alerting["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "FINLAKE_SECRET_ALERTS_SLACK_WEBHOOK_URL",
        "valueFrom": {"secretKeyRef": {"name": "alerts-slack", "key": "webhook-url"}},
    } in env


def test_conditions_follow_the_children_and_events_are_posted(examples: Cluster) -> None:
    def progressing() -> dict[str, Any] | None:
        condition = condition_of(examples.get("marketfeed", "us-tech"), "Progressing")
        return condition if condition and condition["status"] == "True" else None

    condition = eventually(progressing, what="Progressing=True")
    assert condition["reason"] == "ChildrenStarting"
    mark_available(examples, "us-tech-producer")
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
    runs: list[str] = []
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
        runs = _batch_runs_as_the_spark_operator_leaves_them(examples, "market-batch")
        for name in ("market-batch", "market-maintenance"):
            # spark-operator v2.5.2 sets lastRunName to the run it has just created, then lists
            # the COMPLETED runs (newest first) in pastSuccessfulRunNames: never the last run.
            _patch_status(examples, "scheduledsparkapplication", name, {
                "scheduleState": "Scheduled",
                "lastRun": "2026-01-01T10:05:00Z",
                "lastRunName": f"{name}-1767261900000000000",
                "pastSuccessfulRunNames": runs[1:] if name == "market-batch" else [],
                "nextRun": "2026-01-01T11:05:00Z",
            })  # fmt: skip
        for condition in ("Ready", "Fresh", "QualityOK"):
            examples.kubectl(
                "wait", "-n", NAMESPACE, f"--for=condition={condition}",
                "medallionpipeline/market", "--timeout=60s",
            )  # fmt: skip
        pipeline = examples.get("medallionpipeline", "market")
        assert pipeline is not None
        # When the newest completed run finished, not when the running one started.
        assert pipeline["status"]["lastSuccess"] == "2026-01-01T09:41:00Z"
        lag = parse_duration(pipeline["status"]["lag"])
        assert timedelta(seconds=29) <= lag <= timedelta(minutes=5)
        newest.labels("market").set(time.time() - 3600)

        def stale() -> dict[str, Any] | None:
            condition = condition_of(examples.get("medallionpipeline", "market"), "Fresh")
            return condition if condition and condition["status"] == "False" else None

        assert eventually(stale, what="Fresh=False")["reason"] == "LagOverObjective"
    finally:
        server.shutdown()
        thread.join()
        for run in runs:
            examples.kubectl("delete", "sparkapplication", run, "-n", NAMESPACE)


def _batch_runs_as_the_spark_operator_leaves_them(cluster: Cluster, schedule: str) -> list[str]:
    """The run ``schedule`` has just started and two completed before it (names, newest first)."""
    template = eventually(lambda: cluster.get("scheduledsparkapplication", schedule))
    runs = [  # (name, state, terminationTime)
        (f"{schedule}-1767261900000000000", "RUNNING", None),
        (f"{schedule}-1767258300000000000", "COMPLETED", "2026-01-01T09:41:00Z"),
        (f"{schedule}-1767254700000000000", "COMPLETED", "2026-01-01T08:39:00Z"),
    ]
    for name, state, finished in runs:
        run = {
            "apiVersion": "sparkoperator.k8s.io/v1beta2",
            "kind": "SparkApplication",
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "labels": {"sparkoperator.k8s.io/scheduled-app-name": schedule},
            },
            "spec": template["spec"]["template"],
        }
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(run))
        status: dict[str, Any] = {"applicationState": {"state": state}, "driverInfo": {}}
        if finished is not None:
            status["terminationTime"] = finished
        _patch_status(cluster, "sparkapplication", name, status)
    return [name for name, _, _ in runs]


class _SlowMetrics(BaseHTTPRequestHandler):
    """Metrics that, once armed, trickle a comment line at a time for a few seconds: a resync
    reading them stays busy (httpx's timeout is per read) for as long as the test needs."""

    armed = threading.Event()
    entered = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        if type(self).armed.is_set():
            type(self).entered.set()
            for _ in range(40):  # 8 s
                self.wfile.write(b"# still reading\n")
                self.wfile.flush()
                time.sleep(0.2)

    def log_message(self, *_: object) -> None:
        pass


def test_a_pipeline_deleted_during_its_resync_goes_once_that_resync_ends(
    examples: Cluster,
) -> None:
    # kopf keeps the finalizer while the resync timer runs and, by default, looks again only a
    # minute later: the operator makes it look every TIMER_EXIT_POLL_S instead.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowMetrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    manifest = (
        "apiVersion: finlake.io/v1alpha1\nkind: MedallionPipeline\n"
        f"metadata: {{name: slowread, namespace: {NAMESPACE}}}\n"
        "spec:\n  layers:\n    bronze: {table: market.raw}\n"
        "    silver: {table: market.cleaned, quarantineTable: market.quarantine}\n"
        "    gold: {tables: [market.ohlc_1m]}\n"
        f"  freshness: {{metricsUrl: 'http://127.0.0.1:{server.server_port}/metrics'}}\n"
    )
    try:
        examples.kubectl("apply", "-f", "-", stdin=manifest)
        eventually(  # created: from now on the resync timer is what reads the metrics
            lambda: ((examples.get("medallionpipeline", "slowread") or {}).get("status") or {}).get(
                "observedGeneration"
            ),
            what="the pipeline reconciled",
        )
        _SlowMetrics.armed.set()
        assert _SlowMetrics.entered.wait(60), "no resync read the metrics"
        examples.kubectl(
            "delete", "medallionpipeline", "slowread", "-n", NAMESPACE, "--timeout=30s"
        )
        assert examples.get("medallionpipeline", "slowread") is None
    finally:
        server.shutdown()
        server.server_close()


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
    assert maintenance["spec"]["template"]["arguments"][-3:] == [
        "transactions.summary", "transactions.uploads", "transactions.batch_runs",
    ]  # fmt: skip
    document = eventually(lambda: examples.get("configmap", "transactions-pipeline"))
    assert "flow: transactions" in document["data"]["pipeline.yaml"]
    assert examples.get("sparkapplication", "transactions-stream") is None
    assert examples.get("service", "transactions-stream-metrics") is None


def test_transactions_freshness_comes_from_the_last_successful_batch_run(
    examples: Cluster,
) -> None:
    def condition(kind: str, reason: str) -> dict[str, Any] | None:
        found = condition_of(examples.get("medallionpipeline", "transactions"), kind)
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
