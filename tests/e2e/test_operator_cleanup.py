"""`finlake operator cleanup` (the chart's pre-delete hook) on the real API server, with no operator
to release the resources: it deletes only the release's, and says which stay and why."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.e2e.conftest import ROOT, Cluster, eventually

NAMESPACE = "finlake-cleanup"  # no operator watches it
SPEC = {"source": "simulate", "symbols": ["AAPL"], "topic": "market-data",
        "schemaSubject": "market-data-value"}  # fmt: skip


def _feed(cluster: Cluster, name: str, release: str | None) -> None:
    annotations = (
        {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": NAMESPACE}
        if release
        else {}
    )
    feed = {
        "apiVersion": "finlake.io/v1alpha1", "kind": "MarketFeed",
        "metadata": {"name": name, "namespace": NAMESPACE, "annotations": annotations,
                     "finalizers": ["finlake.io/finalizer"]},  # as the operator leaves it
        "spec": SPEC,
    }  # fmt: skip
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(feed))


def _cleanup(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINLAKE_")}
    env |= {"COLUMNS": "300", "PYTHONWARNINGS": "ignore:Unverified HTTPS request"}
    return subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", "operator", "cleanup", "--namespace",
         NAMESPACE, "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def _release_finalizer(cluster: Cluster, name: str) -> None:
    cluster.kubectl(
        "patch", "marketfeed", name, "-n", NAMESPACE, "--type=merge",
        "-p", '{"metadata": {"finalizers": null}}',
    )  # fmt: skip


def test_cleanup_deletes_the_release_resources_and_names_those_no_operator_released(
    cluster: Cluster,
) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "manifests" / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    cluster.kubectl("create", "namespace", NAMESPACE)
    _feed(cluster, "of-the-release", "rel")
    _feed(cluster, "of-another-release", "other")
    _feed(cluster, "applied-by-hand", None)
    waited = _cleanup(cluster, "--release", "rel", "--timeout", "2")
    assert waited.returncode == 1, waited.stdout + waited.stderr
    said = " ".join(waited.stdout.split())
    assert f"deleting MarketFeed {NAMESPACE}/of-the-release" in said
    assert f"still present after 2 s: MarketFeed {NAMESPACE}/of-the-release." in said
    assert "finalizer (finlake.io/finalizer)" in said
    assert "helm uninstall --no-hooks" in said
    assert "Traceback" not in waited.stderr
    for name in ("of-another-release", "applied-by-hand"):  # not the release's: left alone
        feed = cluster.get("marketfeed", name, NAMESPACE)
        assert feed is not None, name
        assert "deletionTimestamp" not in feed["metadata"], name
    # The operator would now clean up and let go; played here.
    _release_finalizer(cluster, "of-the-release")
    eventually(lambda: cluster.get("marketfeed", "of-the-release", NAMESPACE) is None, 30, "gone")
    again = _cleanup(cluster, "--release", "rel")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"release rel has no finlake resources in {NAMESPACE}" in again.stdout
    for name in ("of-another-release", "applied-by-hand"):
        _release_finalizer(cluster, name)
