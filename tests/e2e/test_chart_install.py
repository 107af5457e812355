"""The Helm chart on the real API server: every values file accepted by a server-side dry run,
then values-dev.yaml installed for real and its operator, run under the chart's ServiceAccount,
reconciling the example resources to Ready with exactly the permissions the chart grants."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART, VALUES_FILES, ChartTools, chart_tools, documents
from tests.e2e.chart_release import (
    INSTALL_NAMESPACE,
    OPERATOR_SA,
    Installed,
    run_hook_job,
    start_operator,
)
from tests.e2e.conftest import ROOT, Cluster, _stop, eventually

__all__ = ["chart_tools"]  # the chart tests' session fixture, shared here

EXAMPLES = ROOT / "manifests" / "examples"
RELEASE = "finlake"
DRY_RUN_NAMESPACE = "finlake"  # the namespace ChartTools.render renders for
# Secrets values-dev.yaml references by name (the platform team creates them; never the chart).
DEV_SECRETS = {
    "finlake-dev-catalog": {"password": "dev"},
    "finlake-dev-s3": {"access-key-id": "dev", "secret-access-key": "dev"},
    "finlake-dev-api-keys": {"api-key-hashes": "0" * 64},
    "finlake-dev-dashboard-key": {"api-key": "dev"},
}


@pytest.fixture(scope="module")
def platform(cluster: Cluster, chart_tools: ChartTools) -> Cluster:
    """The API server with the CRDs the chart needs: ours, spark-operator's, Prometheus'."""
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "manifests" / "crds"))
    cluster.kubectl("apply", "--server-side", "-f", str(chart_tools.prometheus_operator_crds))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    return cluster


def _ensure_namespace(cluster: Cluster, name: str) -> None:
    manifest = f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=manifest)


def _dry_run(cluster: Cluster, manifests: str) -> subprocess.CompletedProcess[str]:
    for namespace in {str(d["metadata"].get("namespace", "")) for d in documents(manifests)}:  # type: ignore[union-attr]
        if namespace:
            _ensure_namespace(cluster, namespace)
    _ensure_namespace(cluster, DRY_RUN_NAMESPACE)
    return subprocess.run(
        [
            str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig),
            "apply", "--server-side", "--dry-run=server", "--field-manager=helm",
            "-n", DRY_RUN_NAMESPACE, "-f", "-",
        ],
        input=manifests, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("values", VALUES_FILES)
def test_rendered_chart_is_accepted_by_the_api_server(
    platform: Cluster, chart_tools: ChartTools, values: str
) -> None:
    manifests = chart_tools.render("-f", CHART / values, "--set", "examples.enabled=true")
    kinds = {str(d["kind"]) for d in documents(manifests)}
    assert {"ServiceMonitor", "PrometheusRule", "MarketFeed", "Deployment"} <= kinds, kinds
    result = _dry_run(platform, manifests)
    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout


def test_the_dry_run_refuses_what_the_real_schemas_refuse(
    platform: Cluster, chart_tools: ChartTools
) -> None:
    manifests = chart_tools.render().replace("      rules:\n", "      rulez:\n", 1)
    result = _dry_run(platform, manifests)
    assert result.returncode != 0
    assert "rulez" in result.stderr, result.stderr


@pytest.fixture(scope="module")
def installed(
    platform: Cluster, chart_tools: ChartTools, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("chart-install")
    _ensure_namespace(platform, INSTALL_NAMESPACE)
    # What the platform team provides before installing: the referenced Secrets and ConfigMaps.
    for name, data in DEV_SECRETS.items():
        literals = [f"--from-literal={key}={value}" for key, value in data.items()]
        platform.kubectl("create", "secret", "generic", name, "-n", INSTALL_NAMESPACE, *literals)
    platform.kubectl("apply", "-n", INSTALL_NAMESPACE, "-f", str(EXAMPLES / "references.yaml"))
    result = chart_tools.run(
        chart_tools.helm, "install", RELEASE, CHART, "--namespace", INSTALL_NAMESPACE,
        "--kubeconfig", platform.kubeconfig, "-f", CHART / "values-dev.yaml",
        # Peering on (as with more than one replica), so its object and RBAC are exercised too.
        "--set", "operator.standalone=false",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "STATUS: deployed" in result.stdout, result.stdout
    process, log = start_operator(platform, work)
    try:
        yield Installed(platform, process, log)
    finally:
        _stop(process)


def _condition(obj: dict[str, Any] | None, kind: str) -> str | None:
    for condition in ((obj or {}).get("status") or {}).get("conditions", []):
        if condition["type"] == kind:
            return str(condition["status"])
    return None


def _patch_status(installed: Installed, kind: str, name: str, status: dict[str, Any]) -> None:
    """Play the missing controllers (no kubelet, no spark-operator) for one child."""
    obj = eventually(lambda: installed.get(kind, name), 90, f"{kind} {name}")
    if kind == "deployment":
        status = status | {"observedGeneration": obj["metadata"]["generation"]}
    installed.kubectl(
        "patch", kind, name, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


EXAMPLE_RESOURCES = [
    (str(d["kind"]).lower(), str(d["metadata"]["name"]))
    for path in sorted(EXAMPLES.glob("*.yaml"))
    for d in yaml.safe_load_all(path.read_text())
    if d and str(d["apiVersion"]).startswith("finlake.io/")
]
AVAILABLE = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1}


def test_installed_chart_provides_what_the_operator_expects(installed: Installed) -> None:
    platform = installed.get("configmap", "finlake-platform")
    assert platform is not None
    assert platform["data"]["FINLAKE_KAFKA__BOOTSTRAP_SERVERS"] == "kafka.finlake-dev.svc:9092"
    assert platform["data"]["FINLAKE_REGISTRY__URL"].startswith("http://apicurio-registry.")
    assert platform["data"]["FINLAKE_LAKE__CATALOG_URL"].startswith("jdbc:postgresql://")
    assert installed.get("kopfpeering", "finlake") is not None
    # The example resources came with the release (values-dev.yaml: examples.enabled).
    for kind, name in EXAMPLE_RESOURCES:
        assert installed.get(kind, name) is not None, (kind, name)


def test_operator_under_the_chart_rbac_reconciles_the_examples_to_ready(
    installed: Installed,
) -> None:
    for name in ("us-tech-producer", "sp500-producer", "simulated-producer"):
        _patch_status(installed, "deployment", name, AVAILABLE)
    for name in ("big-tech-breakout-alerting", "unusual-move-alerting"):
        _patch_status(installed, "deployment", name, AVAILABLE)
    for name in ("market-stream", "market-alert-detection"):
        _patch_status(installed, "sparkapplication", name, {
            "applicationState": {"state": "RUNNING"}, "driverInfo": {},
        })  # fmt: skip
    for name in (
        "market-batch",
        "market-maintenance",
        "transactions-batch",
        "transactions-maintenance",
    ):
        _patch_status(installed, "scheduledsparkapplication", name, {"scheduleState": "Scheduled"})
    for kind, name in EXAMPLE_RESOURCES:
        eventually(
            lambda kind=kind, name=name: _condition(installed.get(kind, name), "Ready") == "True",
            90,
            f"{kind} {name} Ready (operator log: {installed.log})",
        )
    waited = installed.kubectl(
        "wait", "--for=condition=Ready", "marketfeeds,medallionpipelines,alertrules", "--all",
        "--timeout=30s",
    )  # fmt: skip
    assert waited.count("condition met") == len(EXAMPLE_RESOURCES)
    # Children carry the platform ConfigMap the chart created.
    producer = installed.get("deployment", "us-tech-producer")
    assert producer is not None
    env_from = producer["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"configMapRef": {"name": "finlake-platform", "optional": True}} in env_from


def _audit(cluster: Cluster, user: str) -> list[dict[str, Any]]:
    assert cluster.audit_log is not None
    events = [json.loads(line) for line in cluster.audit_log.read_text().splitlines() if line]
    return [e for e in events if e.get("user", {}).get("username") == user]


def _granted(installed: Installed) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every rule bound to the operator's ServiceAccount."""
    rules: list[dict[str, Any]] = []
    role = installed.get("role", OPERATOR_SA)
    assert role is not None
    rules += role["rules"]
    cluster_role = installed.cluster.get("clusterrole", f"{OPERATOR_SA}-discovery")
    assert cluster_role is not None
    rules += cluster_role["rules"]
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_chart_grants_exactly_what_the_operator_uses(installed: Installed) -> None:
    # Deleting the examples exercises the cleanup path (explicit child deletion, finalizers).
    installed.kubectl(
        "delete", "marketfeeds,medallionpipelines,alertrules", "--all", "--timeout=90s"
    )
    assert installed.get("deployment", "us-tech-producer") is None
    assert installed.get("sparkapplication", "market-stream") is None
    assert installed.operator.poll() is None, installed.log.read_text()[-3000:]
    user = f"system:serviceaccount:{INSTALL_NAMESPACE}:{OPERATOR_SA}"
    events = _audit(installed.cluster, user)
    assert events, "no request of the operator's ServiceAccount in the audit log"
    refused = sorted(
        {
            f"{e['verb']} {e['objectRef'].get('resource')}/{e['objectRef'].get('subresource', '')}"
            for e in events
            if e.get("responseStatus", {}).get("code") == 403
        }
    )
    assert not refused, f"the chart's RBAC refused the operator: {refused}"
    used: set[tuple[str, str, str]] = set()
    for event in events:
        ref = event.get("objectRef") or {}
        if "resource" not in ref:
            continue  # discovery (/api, /apis), allowed to every authenticated user
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        used.add((ref.get("apiGroup", ""), resource, event["verb"]))
        if event["verb"] == "patch" and event.get("responseStatus", {}).get("code") == 201:
            # Server-side apply that created the object: authorised as create as well.
            used.add((ref.get("apiGroup", ""), resource, "create"))
    granted = _granted(installed)
    assert used <= granted, sorted(used - granted)
    # Checked by the OwnerReferencesPermissionEnforcement admission plugin when a child's
    # ownerReference sets blockOwnerDeletion, not requested: without it the creates are refused.
    kinds = ("marketfeeds", "medallionpipelines", "alertrules")
    admission = {("finlake.io", f"{kind}/finalizers", "update") for kind in kinds}
    assert admission <= granted
    assert granted - admission <= used, (
        f"granted but never used: {sorted(granted - admission - used)}"
    )


def test_helm_uninstall_lets_the_operator_release_the_examples_first(
    installed: Installed, chart_tools: ChartTools, tmp_path: Path
) -> None:
    # The examples back (the test above deleted them): an upgrade re-creates what is missing.
    helm = [chart_tools.helm, "--kubeconfig", str(installed.cluster.kubeconfig)]
    upgraded = chart_tools.run(
        *helm, "upgrade", RELEASE, CHART, "--namespace", INSTALL_NAMESPACE,
        "-f", CHART / "values-dev.yaml", "--set", "operator.standalone=false",
    )  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr
    for kind, name in EXAMPLE_RESOURCES:  # reconciled: each holds the operator's finalizer
        eventually(
            lambda kind=kind, name=name: (
                "finlake.io/finalizer"
                in ((installed.get(kind, name) or {}).get("metadata", {}).get("finalizers") or [])
            ),
            90,
            f"{kind} {name} finalized by the operator (log: {installed.log})",
        )
    assert installed.get("deployment", "us-tech-producer") is not None
    uninstall = subprocess.Popen(
        [str(a) for a in (*helm, "uninstall", RELEASE, "--namespace", INSTALL_NAMESPACE,
                          "--timeout", "240s")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        said = run_hook_job(installed, "finlake-uninstall-cleanup", tmp_path)
        out, err = uninstall.communicate(timeout=240)
    finally:
        uninstall.kill()
    assert uninstall.returncode == 0, err
    assert f'release "{RELEASE}" uninstalled' in out
    assert f"the {len(EXAMPLE_RESOURCES)} finlake resources of release {RELEASE} are gone" in said
    for kind, name in EXAMPLE_RESOURCES:
        assert installed.get(kind, name) is None, (kind, name)
    assert installed.get("deployment", "us-tech-producer") is None  # the operator's child
    assert installed.get("deployment", OPERATOR_SA) is None
    for kind in ("job", "serviceaccount", "role"):  # the hook's objects, once it succeeded
        assert installed.get(kind, "finlake-uninstall-cleanup") is None, kind
