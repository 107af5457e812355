"""The operator against a real API server: edits, drift, refusals, missing references, pause."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import (
    NAMESPACE,
    Cluster,
    condition_of,
    eventually,
    refused,
)


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
        (
            "{source: simulate, topic: ticks, schemaSubject: market-data-value}",
            "schemaSubject must be the topic's name followed by -value",
        ),
        (
            "{source: simulate, schemaSubject: ticks-value}",
            "schemaSubject must be the topic's name followed by -value",
        ),
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
        condition = condition_of(examples.get("marketfeed", "late-list"), "Degraded")
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
        condition = condition_of(examples.get("medallionpipeline", "reused-table"), "Degraded")
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
        condition = condition_of(examples.get("marketfeed", "simulated"), "Progressing")
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
