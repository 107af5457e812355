"""helm unittest, the chart's copies of manifests/ (no drift), the generated README (not stale)."""

from __future__ import annotations

import filecmp
import re
import shutil
from pathlib import Path

import pytest

from tests.chart.conftest import CHART, REPO, ChartTools


def test_helm_unittest_passes_strict(chart_tools: ChartTools) -> None:
    result = chart_tools.run(
        chart_tools.helm, "unittest", "--strict", "-f", "tests/**/*_test.yaml", CHART
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.search(r"^Tests:\s+(\d+) passed", result.stdout, re.MULTILINE)
    assert passed, result.stdout
    assert int(passed.group(1)) > 0, result.stdout


def test_every_template_has_a_unit_test() -> None:
    tested = {
        line.split("templates/", 1)[1].strip()
        for path in (CHART / "tests").rglob("*_test.yaml")
        for line in path.read_text().splitlines()
        if line.strip().startswith("- templates/")
        or line.strip().startswith("template: templates/")
    }
    templates = {
        str(p.relative_to(CHART / "templates")) for p in (CHART / "templates").rglob("*.yaml")
    }
    missing = templates - tested
    assert len(missing) < len(templates), "helm-unittest covers no template"
    # The templates still without a suite are listed here so a new template cannot slip in untested.
    assert missing <= UNTESTED, sorted(missing - UNTESTED)


UNTESTED = {
    "networkpolicy.yaml", "ingestion/deployment.yaml",
    "ingestion/pdb.yaml", "ingestion/service.yaml", "query-api/ingress.yaml", "query-api/pdb.yaml",
    "query-api/service.yaml", "alerting/pdb.yaml", "alerting/service.yaml", "operator/pdb.yaml",
    "operator/service.yaml", "operator/serviceaccount.yaml", "monitoring/podmonitor.yaml",
    "monitoring/prometheusrule.yaml",
}  # fmt: skip


@pytest.mark.parametrize("folder", ["crds", "examples"])
def test_chart_copy_matches_manifests(folder: str) -> None:
    source, copy = REPO / "manifests" / folder, CHART / folder
    ours = sorted(p.name for p in source.glob("*.yaml"))
    theirs = sorted(p.name for p in copy.glob("*.yaml"))
    assert ours == theirs, f"run `make crds-sync`: {folder}/ differs from manifests/{folder}/"
    _, mismatch, errors = filecmp.cmpfiles(source, copy, ours, shallow=False)
    assert mismatch == errors == [], f"run `make crds-sync`: {mismatch + errors} differ"


def test_readme_is_generated_from_values(chart_tools: ChartTools, tmp_path: Path) -> None:
    chart = tmp_path / "finlake"
    shutil.copytree(CHART, chart)
    result = chart_tools.run(
        chart_tools.helm_docs, "--chart-search-root", chart, "--template-files", "README.md.gotmpl"
    )
    assert result.returncode == 0, result.stderr
    assert (chart / "README.md").read_text() == (CHART / "README.md").read_text(), (
        "charts/finlake/README.md is stale: run `make helm-docs`"
    )
