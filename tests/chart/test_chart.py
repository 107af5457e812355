"""helm lint and `helm template | kubeconform -strict` per values file; security invariants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import CHART, VALUES_FILES, ChartTools, documents

WORKLOADS = ("Deployment",)


@pytest.mark.parametrize("values", VALUES_FILES)
def test_helm_lint_passes_strict(chart_tools: ChartTools, values: str) -> None:
    result = chart_tools.run(chart_tools.helm, "lint", CHART, "--strict", "-f", CHART / values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", VALUES_FILES)
def test_rendered_chart_passes_kubeconform_strict(
    chart_tools: ChartTools, our_crd_schemas: Path, values: str
) -> None:
    manifests = chart_tools.render("-f", CHART / values, "--set", "examples.enabled=true")
    result = chart_tools.validate(manifests, our_crd_schemas)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Invalid: 0, Errors: 0, Skipped: 0" in result.stdout, result.stdout


def test_kubeconform_rejects_an_unknown_field(chart_tools: ChartTools) -> None:
    manifests = chart_tools.render().replace("  replicas: 1\n", "  replicas: 1\n  replicaz: 1\n", 1)
    result = chart_tools.validate(manifests)
    assert result.returncode == 1
    assert "replicaz" in result.stdout


def test_kubeconform_rejects_a_bad_prometheus_rule(chart_tools: ChartTools) -> None:
    manifests = chart_tools.render().replace("      rules:\n", "      rulez:\n", 1)
    result = chart_tools.validate(manifests)
    assert result.returncode == 1
    assert "PrometheusRule" in result.stdout


def test_values_schema_rejects_a_bad_value(chart_tools: ChartTools) -> None:
    result = chart_tools.run(
        chart_tools.helm, "template", CHART, "--set", "queryApi.engine=spark",
        "--set", "operator.replicaCount=-1",
    )  # fmt: skip
    assert result.returncode == 1
    assert "queryApi/engine" in result.stderr
    assert "operator/replicaCount" in result.stderr


def pod_specs(manifests: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(doc["metadata"]["name"]), doc["spec"]["template"]["spec"])  # type: ignore[index]
        for doc in documents(manifests)
        if doc["kind"] in WORKLOADS
    ]


@pytest.mark.parametrize("values", VALUES_FILES)
def test_every_container_is_non_root_read_only_and_without_capabilities(
    chart_tools: ChartTools, values: str
) -> None:
    specs = pod_specs(chart_tools.render("-f", CHART / values))
    assert {name.rsplit("-", 1)[-1] for name, _ in specs} >= {"operator", "ingestion", "api"}
    for name, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name
            assert ":" in container["image"].rsplit("/", 1)[-1], f"{name}: untagged image"


@pytest.mark.parametrize("values", VALUES_FILES)
def test_secrets_are_only_referenced(chart_tools: ChartTools, values: str) -> None:
    docs = documents(chart_tools.render("-f", CHART / values))
    assert not [d for d in docs if d["kind"] == "Secret"]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and "FINLAKE_HOME" in d["data"])  # type: ignore[operator]
    for key in config["data"]:  # type: ignore[union-attr]
        assert not any(word in key for word in ("PASSWORD", "SECRET", "TOKEN", "WEBHOOK")), key


def rbac_rules(manifests: str, kind: str) -> list[dict[str, Any]]:
    return [rule for doc in documents(manifests) if doc["kind"] == kind for rule in doc["rules"]]  # type: ignore[attr-defined]


def test_operator_rbac_is_namespaced_by_default_without_wildcards(chart_tools: ChartTools) -> None:
    manifests = chart_tools.render("--set", "operator.watchNamespaces={markets,risk}")
    # Cluster-scoped: only kopf's read-only discovery of CRDs and Namespaces.
    (discovery,) = [d for d in documents(manifests) if d["kind"] == "ClusterRole"]
    assert {
        (group, resource, verb)
        for rule in discovery["rules"]  # type: ignore[attr-defined]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    } == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
    }
    roles = [d for d in documents(manifests) if d["kind"] == "Role"]
    by_component: dict[str, list[str]] = {}
    for role in roles:
        component = role["metadata"]["labels"]["app.kubernetes.io/component"]  # type: ignore[index]
        by_component.setdefault(component, []).append(role["metadata"]["namespace"])  # type: ignore[index]
    # The operator's, and the Spark drivers' (to run their executors), in each watched namespace.
    assert {c: sorted(n) for c, n in by_component.items()} == {
        "operator": ["markets", "risk"],
        "spark": ["markets", "risk"],
    }
    for rule in rbac_rules(manifests, "Role"):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
    operator = next(spec for name, spec in pod_specs(manifests) if name.endswith("-operator"))
    env = {e["name"]: e.get("value") for e in operator["containers"][0]["env"]}
    assert json.loads(env["FINLAKE_OPERATOR__NAMESPACES"]) == ["markets", "risk"]


def test_operator_rbac_cluster_wide_option(chart_tools: ChartTools) -> None:
    manifests = chart_tools.render(
        "--set", "operator.clusterWide=true", "--set", "sparkApps.serviceAccount.create=false"
    )
    kinds = [doc["kind"] for doc in documents(manifests)]
    assert "Role" not in kinds
    assert kinds.count("ClusterRole") == 2  # the operator's and the discovery one
    assert kinds.count("ClusterRoleBinding") == 2
    rules = rbac_rules(manifests, "ClusterRole")
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
    secrets = [r for r in rules if "secrets" in r["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]


def operator_env(manifests: str) -> dict[str, str | None]:
    operator = next(spec for name, spec in pod_specs(manifests) if name.endswith("-operator"))
    return {e["name"]: e.get("value") for e in operator["containers"][0]["env"]}


@pytest.mark.parametrize("values", VALUES_FILES[1:])
def test_every_environment_gives_the_alert_services_a_dashboard_key(
    chart_tools: ChartTools, values: str
) -> None:
    # An AlertRule's default channel is the dashboard, whose query API refuses a post without an
    # API key: without the platform's key the operator holds such rules Degraded.
    env = operator_env(chart_tools.render("-f", CHART / values))
    assert env.get("FINLAKE_OPERATOR__DASHBOARD_API_KEY_SECRET"), values
    assert env["FINLAKE_OPERATOR__DASHBOARD_API_KEY_KEY"] == "api-key"


def test_development_mails_through_mailpit_without_starttls(chart_tools: ChartTools) -> None:
    # Mailpit has no certificate: a STARTTLS the alert service insisted on would fail every email.
    docs = documents(chart_tools.render("-f", CHART / "values-dev.yaml"))
    config = next(d for d in docs if d["kind"] == "ConfigMap" and "FINLAKE_HOME" in d["data"])  # type: ignore[operator]
    data: dict[str, str] = config["data"]  # type: ignore[assignment]
    assert data["FINLAKE_ALERTING__SMTP__PORT"] == "1025"
    assert data["FINLAKE_ALERTING__SMTP__STARTTLS"] == "false"
    assert "FINLAKE_ALERTING__SMTP__USERNAME" not in data  # no password without TLS
