"""PrometheusRules pass promtool check and unit tests; rules and dashboards use real metrics."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART, ChartTools, documents
from tests.chart.metric_names import code_metric_names

PROMTOOL_TESTS = Path(__file__).parent / "promtool" / "rules_test.yaml"
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
# A finlake metric in PromQL: not followed by "(" (a function) nor by a matcher (a label name).
FINLAKE_METRIC = re.compile(r"\bfinlake_[a-z0-9_]+\b(?!\s*[=!~(])")


def rendered_rule_groups(chart_tools: ChartTools) -> list[dict[str, Any]]:
    rules = [d for d in documents(chart_tools.render()) if d["kind"] == "PrometheusRule"]
    assert len(rules) == 1
    return list(rules[0]["spec"]["groups"])  # type: ignore[index]


def test_rules_pass_promtool_check_and_unit_tests(chart_tools: ChartTools, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": rendered_rule_groups(chart_tools)})
    )
    check = chart_tools.run(chart_tools.promtool, "check", "rules", tmp_path / "rules.yaml")
    assert check.returncode == 0, check.stdout + check.stderr
    shutil.copy(PROMTOOL_TESTS, tmp_path / "rules_test.yaml")
    test = chart_tools.run(chart_tools.promtool, "test", "rules", tmp_path / "rules_test.yaml")
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_alert_has_a_unit_test(chart_tools: ChartTools) -> None:
    alerts = {r["alert"] for g in rendered_rule_groups(chart_tools) for r in g["rules"]}
    tested = {
        case["alertname"]
        for test in yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert alerts == tested


def test_promtool_catches_a_broken_rule(chart_tools: ChartTools, tmp_path: Path) -> None:
    groups = rendered_rule_groups(chart_tools)
    groups[0]["rules"][0]["expr"] = "sum by (pipeline) (finlake_pipeline_rows_total"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    check = chart_tools.run(chart_tools.promtool, "check", "rules", tmp_path / "rules.yaml")
    assert check.returncode == 1


def dashboard_expressions(path: Path) -> list[str]:
    dashboard = json.loads(path.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def used_metrics(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in FINLAKE_METRIC.findall(expr)}


@pytest.fixture(scope="module")
def exposed_names() -> set[str]:
    return code_metric_names()


def test_the_code_exposes_metrics_of_every_component(exposed_names: set[str]) -> None:
    for prefix in ("finlake_ingestion_", "finlake_api_", "finlake_pipeline_", "finlake_alerts_",
                   "finlake_operator_"):  # fmt: skip
        assert any(name.startswith(prefix) for name in exposed_names), prefix


def test_rule_metrics_exist_in_the_code(chart_tools: ChartTools, exposed_names: set[str]) -> None:
    expressions = [r["expr"] for g in rendered_rule_groups(chart_tools) for r in g["rules"]]
    used = used_metrics(expressions)
    assert len(used) >= 7
    assert used - exposed_names == set()


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_metrics_exist_in_the_code(dashboard: Path, exposed_names: set[str]) -> None:
    used = used_metrics(dashboard_expressions(dashboard))
    assert used, f"{dashboard.name} queries no finlake metric"
    assert used - exposed_names == set()


def test_the_four_dashboards_are_rendered_for_the_grafana_sidecar(chart_tools: ChartTools) -> None:
    maps = [
        d for d in documents(chart_tools.render())
        if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"  # type: ignore[index]
    ]  # fmt: skip
    assert {p.stem for p in DASHBOARDS} == {"pipeline-overview", "ingestion", "api", "alerts"}
    assert len(maps) == len(DASHBOARDS)
    for config_map in maps:
        (body,) = config_map["data"].values()  # type: ignore[union-attr]
        assert json.loads(body)["panels"]
