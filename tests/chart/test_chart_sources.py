"""helm unittest, the chart's copies of manifests/ (no drift), the generated README (not stale)."""

from __future__ import annotations

import filecmp
import re
import shutil
from pathlib import Path

import pytest
import yaml

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
    """Each template has its own suite, tests/<template path>_test.yaml, that renders it."""
    templates = sorted(
        str(p.relative_to(CHART / "templates")) for p in (CHART / "templates").rglob("*.yaml")
    )
    assert templates, "the chart has no templates"
    missing = []
    for template in templates:
        suite = CHART / "tests" / template.replace(".yaml", "_test.yaml")
        listed = yaml.safe_load(suite.read_text()).get("templates", []) if suite.is_file() else []
        if f"templates/{template}" not in listed:
            missing.append(template)
    # Empty, so a new template cannot slip in untested.
    assert not missing, f"templates without a helm-unittest suite of their own: {missing}"


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
