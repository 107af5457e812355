"""The operator outside a cluster without a usable kubeconfig: one line, no traceback."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_operator_run_without_a_kubeconfig_says_so_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    done = run_cli(
        "operator", "run", "--standalone", "--kubeconfig", str(missing),
        env={"FINLAKE_HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": ""},
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: no Kubernetes API to talk to: not in a cluster, and the ")
    assert str(missing) in line
