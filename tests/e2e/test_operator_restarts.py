"""The operator against a real API server: restarts, a standby, liveness (last: removes a CRD)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.conftest import NAMESPACE, Cluster, Operator, eventually


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

        def paused() -> bool:
            # Kopf starts a peer paused and resumes it while it sees no other live peer: on a
            # loaded machine the active one's keep-alive can look stale for a moment (a 5 s
            # lifetime here), so the standby may resume and pause again. What must hold: it is
            # paused while the active operator lives.
            said = standby.log.read_text()
            resumed = said.rfind("Resuming operations")
            return resumed < 0 or resumed < said.rfind("Pausing operations")

        eventually(lambda: peers() == 2, 60, "both operators in the peering")
        eventually(paused, 30, "the standby paused in favour of the active operator")
        before_the_kill = len(standby.log.read_text())
        operator.stop(hard=True)
        manifest = (
            "apiVersion: finlake.io/v1alpha1\nkind: MarketFeed\n"
            f"metadata: {{name: standby-feed, namespace: {NAMESPACE}}}\n"
            "spec: {source: simulate}\n"
        )
        examples.kubectl("apply", "-f", "-", stdin=manifest)
        eventually(lambda: examples.get("deployment", "standby-feed-producer"), 90, "takeover")
        assert "Resuming operations" in standby.log.read_text()[before_the_kill:]
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
