from pathlib import Path
from typing import Any

import pytest
import yaml

from finlake_operator.crds import KINDS, build_crd, render_crds, structural_schema

ROOT = Path(__file__).resolve().parents[3]
CRDS = ROOT / "manifests" / "crds"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _walk(value, f"{path}[{index}]")
    return found


@pytest.mark.parametrize("name", sorted(render_crds()))
def test_committed_crds_match_the_models(name: str) -> None:
    path = CRDS / name
    assert path.is_file(), f"{path} missing: run `finlake operator crds`"
    assert path.read_text("utf-8") == render_crds()[name], (
        f"{path} drifted from the spec models: run `finlake operator crds --output manifests/crds`"
    )


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind: Any) -> None:
    schema = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node, path
        assert not {"anyOf", "oneOf", "allOf"} & node.keys(), path
        assert node.get("type") != "null", path
        assert not ("properties" in node and "additionalProperties" in node), path
        if "properties" in node:
            assert node.get("type") == "object", path


def _resolve(schema: dict[str, Any], dotted: str) -> dict[str, Any]:
    node = schema
    for part in dotted.split("."):
        node = node["properties"][part]
    return node


def test_market_feed_schema_carries_enums_bounds_patterns_and_cel() -> None:
    spec = structural_schema(KINDS[0].spec)
    assert spec["required"] == ["source"]
    assert _resolve(spec, "source")["enum"] == ["yahoo", "simulate", "replay"]
    assert _resolve(spec, "requestBudgetPerMinute")["minimum"] == 2  # a new symbol: 2
    assert _resolve(spec, "symbols")["items"]["pattern"].startswith("^[A-Z0-9]")
    assert _resolve(spec, "pollInterval")["pattern"] == "^([0-9]+(ms|s|m|h|d))+$"
    rules = [v["rule"] for v in spec["x-kubernetes-validations"]]
    assert any("has(self.symbols) != has(self.symbolsFrom)" in rule for rule in rules)


def test_an_optional_lists_item_pattern_reaches_the_crd() -> None:
    # AlertRule.symbols is `list[str] | None` with its item pattern declared on the field; the
    # null branch once took the field's own keys with it, and the API server took any string.
    spec = structural_schema(next(k for k in KINDS if k.kind == "AlertRule").spec)
    symbols = _resolve(spec, "symbols")
    assert symbols["items"] == {"type": "string", "pattern": "^[A-Za-z0-9.^=_-]{1,20}$"}
    assert (symbols["minItems"], symbols["maxItems"]) == (1, 1000)


def test_pipeline_expectations_are_a_map_keyed_by_name() -> None:
    spec = structural_schema(KINDS[1].spec)
    expectations = _resolve(spec, "expectations")
    assert expectations["x-kubernetes-list-type"] == "map"
    assert expectations["x-kubernetes-list-map-keys"] == ["name"]
    assert expectations["items"]["properties"]["action"]["enum"] == ["drop", "quarantine", "fail"]
    layers = _resolve(spec, "layers")
    assert layers["x-kubernetes-validations"][0]["fieldPath"] == ".silver.quarantineTable"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_field_description_reaches_the_crd(kind: Any) -> None:
    spec = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for name, field in kind.spec.model_fields.items():
        alias = field.alias or name
        if field.description:
            assert spec["properties"][alias]["description"] == field.description


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_crd_names_status_and_columns(kind: Any) -> None:
    crd = yaml.safe_load(render_crds()[f"finlake.io_{kind.plural}.yaml"])
    names = crd["spec"]["names"]
    assert names["categories"] == ["finlake"]
    assert names["shortNames"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns[0] == "Ready"
    assert columns[-1] == "Age"
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_crds_command_writes_then_checks(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    assert run_cli("operator", "crds", "--output", str(tmp_path)).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(render_crds())
    assert run_cli("operator", "crds", "--check", "--output", str(tmp_path)).returncode == 0
    stale = tmp_path / "finlake.io_marketfeeds.yaml"
    stale.write_text(stale.read_text().replace("yahoo", "bing"))
    checked = run_cli("operator", "crds", "--check", "--output", str(tmp_path))
    assert checked.returncode == 1
    assert "finlake.io_marketfeeds.yaml" in checked.stdout + checked.stderr


def test_pipeline_schema_carries_the_flow_rules() -> None:
    spec = structural_schema(KINDS[1].spec)
    assert _resolve(spec, "flow")["enum"] == ["market", "transactions"]
    assert "required" not in spec  # layers: required by CEL for market only
    rules = {v["fieldPath"]: v["rule"] for v in spec["x-kubernetes-validations"]}
    assert rules[".layers"] == "has(self.layers) || (has(self.flow) && self.flow == 'transactions')"
    for field in ("sourceTopic", "trigger", "watermark", "maxOffsetsPerTrigger", "expectations"):
        assert rules[f".{field}"].endswith(f"|| !has(self.{field})"), field
        assert field in spec["properties"]
    assert "!has(self.freshness.metricsUrl)" in rules[".freshness.metricsUrl"]
