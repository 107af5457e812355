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


# Label lists of aggregations and vector matching (e.g. `by (namespace, finlake_resource)`).
LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def used_metrics(expressions: list[str]) -> set[str]:
    return {
        name for expr in expressions for name in FINLAKE_METRIC.findall(LABEL_LIST.sub("", expr))
    }


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


def _selects(monitor: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = monitor["spec"]["selector"]
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    return all(
        labels.get(rule["key"]) in rule["values"]
        for rule in selector.get("matchExpressions", [])
        if rule["operator"] == "In"
    )


def test_the_pod_monitors_find_the_operator_s_pods_that_serve_metrics(
    chart_tools: ChartTools,
) -> None:
    from finlake.contracts.alert_rule import AlertRuleSpec
    from finlake.contracts.market_feed import MarketFeedSpec
    from finlake.contracts.medallion_pipeline import MedallionPipelineSpec
    from finlake_operator.builders.alert_rule import build_alerting_deployment
    from finlake_operator.builders.common import Owner
    from finlake_operator.builders.market_feed import build_market_feed_children
    from finlake_operator.builders.medallion_pipeline import build_medallion_pipeline_children

    monitors = [d for d in documents(chart_tools.render()) if d["kind"] == "PodMonitor"]
    owner = Owner(kind="Test", name="x", namespace="finlake", uid="u")
    pods: dict[str, tuple[dict[str, str], set[str]]] = {}  # labels, container port names
    feed = MarketFeedSpec.model_validate({"source": "simulate"})
    rule = AlertRuleSpec.model_validate(
        {
            "symbols": ["AAPL"],
            "condition": {"type": "price_cross", "level": 1, "direction": "above"},
        }
    )
    deployments = [
        next(c for c in build_market_feed_children(owner, feed, ()) if c["kind"] == "Deployment"),
        build_alerting_deployment(owner, rule),
    ]
    for deployment in deployments:
        template = deployment["spec"]["template"]
        ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        pods[deployment["metadata"]["name"]] = (template["metadata"]["labels"], ports)
    layers = {
        "bronze": {"table": "market.raw"},
        "silver": {"table": "market.cleaned", "quarantineTable": "market.quarantine"},
        "gold": {"tables": ["market.ohlc_1m"]},
    }
    pipeline = MedallionPipelineSpec.model_validate({"layers": layers})
    for child in build_medallion_pipeline_children(owner, pipeline):
        spec = child.get("spec", {}).get("template", child.get("spec", {}))
        if "driver" in spec:  # spark-operator labels its drivers spark-role=driver
            driver = spec["driver"]
            labels = {**driver["labels"], "spark-role": "driver"}
            pods[child["metadata"]["name"]] = (labels, {p["name"] for p in driver["ports"]})
    scraped = {
        name
        for name, (labels, ports) in pods.items()
        for monitor in monitors
        if _selects(monitor, labels)
        and {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports
    }
    # Every pod that serves /metrics, and no batch driver (they serve none: no down targets).
    assert scraped == {"x-producer", "x-alerting", "x-stream", "x-alert-detection"}
