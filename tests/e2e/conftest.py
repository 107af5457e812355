"""A real etcd + kube-apiserver (no kubelet) per session, our CRDs and the spark-operator's, and
the operator running as `finlake operator run` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "finlake-e2e"
# The platform's query API key (chart: alerting.dashboard.apiKeySecret): without one the operator
# holds back every rule with a dashboard channel (the query API would refuse its alerts).
DASHBOARD_KEY_SECRET = "finlake-dashboard-key"
TOKEN = "e2e-admin-token"
T = TypeVar("T")
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]  # a watch shows at ResponseStarted
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


_OPERATOR_LOGS: dict[Path, None] = {}  # every operator log of the session, in start order
_LOG_TAIL_LINES = 120


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed e2e test shows what the operators logged meanwhile (their logs live in tmp)."""
    report: pytest.TestReport = yield
    if report.failed and "tests/e2e/" in str(item.path):
        for log in _OPERATOR_LOGS:
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
                report.sections.append((f"{log.name} (last {len(tail)} lines)", "\n".join(tail)))
    return report


@dataclass
class Cluster:
    """The test API server: kubeconfig, kubectl, and where the tools live."""

    kubeconfig: Path
    bin_dir: Path
    crds_dir: Path
    url: str
    audit_log: Path | None = None

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        """Run kubectl against the test API server; returns stdout (stderr on failure)."""
        done = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done.stdout if done.returncode == 0 else done.stderr

    def get(self, kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        """The object as JSON, or None."""
        done = subprocess.run(
            [
                str(self.bin_dir / "kubectl"),
                "--kubeconfig",
                str(self.kubeconfig),
                "get",
                kind,
                name,
                "-n",
                namespace,
                "-o",
                "json",
                "--ignore-not-found",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return json.loads(done.stdout) if done.stdout.strip() else None


def eventually(
    probe: Callable[[], T | None], timeout_s: float = 60, what: str | Callable[[], str] = ""
) -> T:
    """Poll ``probe`` until it returns something truthy (``what``: the timeout's message, or
    what computes it then, e.g. with the resource's status)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            message = what() if callable(what) else what
            raise AssertionError(f"timed out waiting for {message or probe}")
        time.sleep(0.5)


def _tools() -> tuple[Path, Path]:
    done = subprocess.run(
        [str(ROOT / "scripts" / "k8s-tools.sh")], capture_output=True, text=True, timeout=3600
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/k8s-tools.sh failed: {done.stderr[-2000:]}")
    bin_dir = Path(done.stdout.strip().splitlines()[-1])
    return bin_dir, bin_dir.parent / "crds"


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    bin_dir, crds_dir = _tools()
    work = tmp_path_factory.mktemp("kube")
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    etcd = _start(
        [
            str(bin_dir / "etcd"),
            f"--data-dir={work / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
        work / "etcd.log",
    )
    key, pub = work / "sa.key", work / "sa.pub"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
        check=True,
        capture_output=True,
    )
    (work / "tokens.csv").write_text(f"{TOKEN},admin,admin,system:masters\n")
    # What service accounts ask for and get: the chart test checks its RBAC against it.
    (work / "audit-policy.yaml").write_text(AUDIT_POLICY)
    url = f"https://127.0.0.1:{api_port}"
    apiserver = _start(
        [
            str(bin_dir / "kube-apiserver"),
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",  # loopback cannot be a kubernetes endpoint
            "--bind-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={work / 'certs'}",
            f"--etcd-servers={etcd_url}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
            # As OpenShift: setting blockOwnerDeletion needs update on the owner's finalizers.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            "--authorization-mode=RBAC",
            f"--token-auth-file={work / 'tokens.csv'}",
            f"--service-account-issuer={url}/",
            f"--service-account-key-file={pub}",
            f"--service-account-signing-key-file={key}",
            f"--audit-policy-file={work / 'audit-policy.yaml'}",
            f"--audit-log-path={work / 'audit.log'}",
            "--audit-log-format=json",
        ],
        work / "apiserver.log",
    )
    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "e2e", "cluster": {"server": url, "insecure-skip-tls-verify": True}}
                ],
                "users": [{"name": "admin", "user": {"token": TOKEN}}],
                "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
                "current-context": "e2e",
            }
        )
    )
    try:

        def ready() -> bool:
            assert apiserver.poll() is None, (work / "apiserver.log").read_text()[-3000:]
            try:
                answer = httpx.get(
                    f"{url}/readyz",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    verify=False,
                    timeout=2,
                )
            except httpx.HTTPError:
                return False
            return answer.status_code == 200

        eventually(ready, 120, "kube-apiserver /readyz")
        k8s = Cluster(kubeconfig, bin_dir, crds_dir, url, work / "audit.log")
        k8s.kubectl("apply", "--server-side", "-f", str(ROOT / "manifests" / "crds"))
        k8s.kubectl("apply", "--server-side", "-f", str(crds_dir))
        k8s.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        k8s.kubectl("create", "namespace", NAMESPACE)
        k8s.kubectl(
            "create", "secret", "generic", DASHBOARD_KEY_SECRET, "-n", NAMESPACE,
            "--from-literal=api-key=e2e-dashboard-key",
        )  # fmt: skip
        # The peering object the operators coordinate through (the chart installs it).
        peering = "apiVersion: kopf.dev/v1\nkind: KopfPeering\nmetadata: {name: finlake}\n"
        k8s.kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=peering)
        yield k8s
    finally:
        _stop(apiserver)
        _stop(etcd)


@dataclass
class Operator:
    """One operator subprocess (peering "finlake", a fixed priority); start/stop at will."""

    cluster: Cluster
    log: Path
    priority: int = 100
    process: subprocess.Popen[bytes] | None = None
    liveness_port: int = 0
    metrics_port: int = 0

    def start(self) -> None:
        assert self.process is None, "already running"
        self.liveness_port, self.metrics_port = free_port(), free_port()
        env = os.environ | {
            "FINLAKE_OPERATOR__RESYNC_INTERVAL_S": "2",
            "FINLAKE_OPERATOR__LIVENESS_PORT": str(self.liveness_port),
            "FINLAKE_OPERATOR__LIVENESS_HOST": "127.0.0.1",
            "FINLAKE_OPERATOR__METRICS_PORT": str(self.metrics_port),
            "FINLAKE_OPERATOR__METRICS_TIMEOUT_S": "0.5",
            "FINLAKE_OPERATOR__PRIORITY": str(self.priority),
            "FINLAKE_OPERATOR__PEERING_LIFETIME_S": "5",
            "FINLAKE_OPERATOR__DASHBOARD_API_KEY_SECRET": DASHBOARD_KEY_SECRET,
            # The test API server's certificate is self-signed (insecure-skip-tls-verify).
            "PYTHONWARNINGS": "ignore:Unverified HTTPS request",
        }
        _OPERATOR_LOGS[self.log] = None
        command = [sys.executable, "-m", "finlake.cli.main", "operator", "run"]
        command += ["--peering", "finlake", "-n", NAMESPACE]
        command += ["--kubeconfig", str(self.cluster.kubeconfig)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def stop(self, *, hard: bool = False) -> None:
        if self.process is None:
            return
        if hard:
            self.process.kill()
            self.process.wait()
        else:
            _stop(self.process)
        self.process = None


@pytest.fixture(scope="session")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    running = Operator(cluster, tmp_path_factory.mktemp("operator") / "operator.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"


def condition_of(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    """The condition ``kind`` of a resource's status, if it has one."""
    for condition in ((obj or {}).get("status") or {}).get("conditions", []):
        if condition["type"] == kind:
            return dict(condition)
    return None


def mark_available(cluster: Cluster, name: str) -> None:
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


def refused(cluster: Cluster, kind: str, name: str, spec: str) -> str:
    """kubectl's answer to applying a ``kind`` with ``spec``, which the API server must refuse."""
    manifest = (
        f"apiVersion: finlake.io/v1alpha1\nkind: {kind}\n"
        f"metadata: {{name: {name}, namespace: {NAMESPACE}}}\nspec: {spec}\n"
    )
    answer = cluster.kubectl("apply", "-f", "-", stdin=manifest, check=False)
    assert cluster.get(kind.lower(), name) is None, answer
    return answer
