"""The chart checks' tools, installed or found cached by scripts/chart-tools.sh once a session."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "finlake"
VALUES_FILES = ("values.yaml", "values-dev.yaml", "values-staging.yaml", "values-prod.yaml")


@dataclass(frozen=True)
class ChartTools:
    """Paths of the tools and offline schemas; every check runs them from here."""

    helm: Path
    kubeconform: Path
    helm_docs: Path
    promtool: Path
    helm_plugins: Path
    kube_version: str
    kubernetes_schemas: Path
    crd_schemas: Path
    skaffold_schema: Path
    prometheus_operator_crds: Path

    def run(self, *args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a tool (helm finds its unittest plugin here); the caller checks the result."""
        env = {**os.environ, "HELM_PLUGINS": str(self.helm_plugins)}
        return subprocess.run(
            [str(a) for a in args], input=stdin, capture_output=True, text=True, env=env,
            timeout=300, check=False,
        )  # fmt: skip

    def render(self, *args: str | Path) -> str:
        """``helm template`` of the chart (CRDs included); fails the test on a render error."""
        result = self.run(
            self.helm, "template", "finlake", CHART, "--namespace", "finlake", "--include-crds",
            "--kube-version", self.kube_version, *args,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    def validate(self, manifests: str, *schema_dirs: Path) -> subprocess.CompletedProcess[str]:
        """Validate manifests strictly against the offline schemas (Kubernetes, CRDs)."""
        locations = [
            f"{self.kubernetes_schemas}/{{{{.ResourceKind}}}}{{{{.KindSuffix}}}}.json",
            *(
                f"{d}/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json"
                for d in (self.crd_schemas, *schema_dirs)
            ),
        ]
        args: list[str | Path] = [self.kubeconform, "-strict", "-summary", "-output", "text"]
        args += ["-kubernetes-version", self.kube_version]
        for location in locations:
            args += ["-schema-location", location]
        return self.run(*args, "-", stdin=manifests)


@pytest.fixture(scope="session")
def chart_tools() -> ChartTools:
    """Install the tools (minutes cold, instant warm); a missing tool fails, never skips."""
    result = subprocess.run(
        [str(REPO / "scripts" / "chart-tools.sh")],
        capture_output=True,
        text=True,
        timeout=3600,
        # The script runs the converter and reads kubernetes-validate with this interpreter.
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        check=False,
    )
    assert result.returncode == 0, f"scripts/chart-tools.sh failed:\n{result.stderr[-4000:]}"
    folder = Path(result.stdout.strip().splitlines()[-1])
    env = dict(line.split("=", 1) for line in (folder / "env").read_text().splitlines() if line)
    return ChartTools(
        helm=Path(env["HELM"]),
        kubeconform=Path(env["KUBECONFORM"]),
        helm_docs=Path(env["HELM_DOCS"]),
        promtool=Path(env["PROMTOOL"]),
        helm_plugins=Path(env["HELM_PLUGINS"]),
        kube_version=env["KUBE_VERSION"],
        kubernetes_schemas=Path(env["KUBERNETES_SCHEMAS"]),
        crd_schemas=Path(env["CRD_SCHEMAS"]),
        skaffold_schema=Path(env["SKAFFOLD_SCHEMA"]),
        prometheus_operator_crds=Path(env["PROMETHEUS_OPERATOR_CRDS"]),
    )


@pytest.fixture(scope="session")
def our_crd_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kubeconform schemas of finlake's own CRDs, converted from manifests/crds."""
    dest = tmp_path_factory.mktemp("finlake-crd-schemas")
    crds = sorted((REPO / "manifests" / "crds").glob("*.yaml"))
    if crds:
        subprocess.run(
            [sys.executable, REPO / "scripts" / "crd_to_jsonschema.py", "crds", dest, *crds],
            check=True, capture_output=True,
        )  # fmt: skip
    return dest


def documents(manifests: str) -> list[dict[str, object]]:
    """The non-empty YAML documents of a render."""
    return [doc for doc in yaml.safe_load_all(manifests) if doc]
