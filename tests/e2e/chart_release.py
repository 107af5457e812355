"""The release test_chart_install.py installs, run as its pods would be: the operator's container
started here under its ServiceAccount's token, and hook Jobs played."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.e2e.conftest import Cluster, eventually

INSTALL_NAMESPACE = "finlake-chart"
OPERATOR_SA = "finlake-operator"  # release "finlake" + chart "finlake": fullname "finlake"


@dataclass
class Installed:
    """The release installed into INSTALL_NAMESPACE and the operator running as its pod would."""

    cluster: Cluster
    operator: subprocess.Popen[bytes]
    log: Path

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.cluster.get(kind, name, INSTALL_NAMESPACE)

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return self.cluster.kubectl(*args, "-n", INSTALL_NAMESPACE, stdin=stdin)


def service_account_kubeconfig(cluster: Cluster, path: Path, account: str = OPERATOR_SA) -> Path:
    """A kubeconfig holding a real token of one of the chart's ServiceAccounts (TokenRequest)."""
    token = cluster.kubectl(
        "create", "token", account, "-n", INSTALL_NAMESPACE, "--duration=2h"
    ).strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "e2e", "cluster": {"server": cluster.url, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "e2e", "user": account}}],
        "current-context": "sa",
    }
    path.write_text(json.dumps(config))
    return path


def pod_environment(cluster: Cluster, container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would build it: envFrom, then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config_map = cluster.get("configmap", source["configMapRef"]["name"], INSTALL_NAMESPACE)
        assert config_map is not None, f"envFrom: missing ConfigMap {source}"
        env.update(config_map["data"])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        secret = cluster.get("secret", ref["name"], INSTALL_NAMESPACE)
        assert secret is not None, f"env {entry['name']}: missing Secret {ref['name']}"
        env[entry["name"]] = "(set)" if ref["key"] in secret["data"] else ""
    return env


def start_operator(cluster: Cluster, work: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """The installed operator Deployment's container, run here: its args, env and credentials."""
    deployment = cluster.get("deployment", OPERATOR_SA, INSTALL_NAMESPACE)
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == OPERATOR_SA
    (container,) = pod["containers"]
    env = pod_environment(cluster, container)
    # What differs from a pod: no own network namespace (free local ports) or writable volume
    # at FINLAKE_HOME, and a resync fast enough for a test.
    env |= {
        "FINLAKE_HOME": str(work / "home"),
        "FINLAKE_OPERATOR__LIVENESS_HOST": "127.0.0.1",
        "FINLAKE_OPERATOR__LIVENESS_PORT": str(free_port()),
        "FINLAKE_OPERATOR__METRICS_PORT": str(free_port()),
        "FINLAKE_OPERATOR__RESYNC_INTERVAL_S": "2",
        "FINLAKE_OPERATOR__METRICS_TIMEOUT_S": "0.5",
        "PYTHONWARNINGS": "ignore:Unverified HTTPS request",
    }
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("FINLAKE_")}
    kubeconfig = service_account_kubeconfig(cluster, work / "operator-kubeconfig")
    # The image's entrypoint is `finlake`; the Deployment's args follow it.
    command = [sys.executable, "-m", "finlake.cli.main", *container["args"]]
    command += ["--kubeconfig", str(kubeconfig)]
    log = work / "operator.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=inherited | env,
            start_new_session=True,
        )
    return process, log


def run_hook_job(installed: Installed, name: str, work: Path) -> str:
    """Play the kubelet and the Job controller for a hook Job: its container run here under its
    ServiceAccount's token, then the Job marked Complete; the container's output."""
    job = eventually(lambda: installed.get("job", name), 60, f"hook Job {name}")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    kubeconfig = service_account_kubeconfig(
        installed.cluster, work / f"{name}-kubeconfig", pod["serviceAccountName"]
    )
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("FINLAKE_")}
    env = inherited | {"FINLAKE_HOME": str(work / "hook-home"), "COLUMNS": "200",
                       "PYTHONWARNINGS": "ignore:Unverified HTTPS request"}  # fmt: skip
    ran = subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", *container["args"], "--kubeconfig",
         str(kubeconfig)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = {"type": "Complete", "status": "True", "lastProbeTime": at, "lastTransitionTime": at}
    met = done | {"type": "SuccessCriteriaMet"}
    status = {"startTime": at, "completionTime": at, "succeeded": 1, "conditions": [met, done]}
    installed.kubectl(
        "patch", "job", name, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    return ran.stdout
