"""load_resources and documents of other API groups: refused by default, skipped on request."""

from pathlib import Path

import pytest

# Importing a contract registers its kind with load_resources.
from finlake.contracts import alert_rule, market_feed, medallion_pipeline
from finlake.contracts.resources import ResourceError, load_resources

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: alerts-slack}\nstringData: {url: x}\n"
RULE = """\
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {name: breakout}
spec:
  symbols: [AAPL]
  condition: {type: price_cross, level: 250, direction: above}
  channels: [{type: dashboard}]
"""


def test_a_document_of_another_group_is_refused_by_default(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE + "---\n" + SECRET)
    with pytest.raises(ResourceError, match=r"rules\.yaml\[1\]: kind: 'Secret' is not one of"):
        load_resources([path])


def test_documents_of_other_groups_are_skipped_on_request(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(SECRET + "---\n" + RULE)
    (resource,) = load_resources([path], skip_other_groups=True)
    assert (resource.kind, resource.name) == ("AlertRule", "breakout")


def test_a_finlake_typo_is_never_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.replace("finlake.io/v1alpha1", "finlake.io/v1alpha2"))
    with pytest.raises(ResourceError, match="apiVersion"):
        load_resources([path], skip_other_groups=True)
    path.write_text(RULE.replace("apiVersion: finlake.io/v1alpha1\n", ""))
    with pytest.raises(ResourceError, match="apiVersion"):
        load_resources([path], skip_other_groups=True)


def test_the_examples_folder_loads_as_kubectl_applies_it() -> None:
    resources = load_resources(EXAMPLES, skip_other_groups=True)
    kinds = {alert_rule.KIND, market_feed.KIND, medallion_pipeline.KIND}
    assert {r.kind for r in resources} == kinds
    with pytest.raises(ResourceError, match=r"references\.yaml\[0\]: kind: 'ConfigMap'"):
        load_resources(EXAMPLES)
