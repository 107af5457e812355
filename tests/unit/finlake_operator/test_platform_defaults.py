"""The chart's images and pull Secrets reach the pods the operator creates."""

from typing import Any

import pytest

from finlake.contracts.alert_rule import AlertRuleSpec
from finlake.contracts.market_feed import MarketFeedSpec
from finlake.contracts.medallion_pipeline import MedallionPipelineSpec
from finlake_operator.builders.common import Owner, PlatformDefaults, with_pull_secrets
from finlake_operator.builders.medallion_pipeline import build_medallion_pipeline_children
from finlake_operator.handlers.alert_rule import rule_plan
from finlake_operator.handlers.market_feed import plan_market_feed
from finlake_operator.handlers.medallion_pipeline import with_platform_image

OWNER = Owner(kind="MedallionPipeline", name="market", namespace="markets", uid="uid-2")
LAYERS = {
    "bronze": {"table": "market.raw"},
    "silver": {"table": "market.cleaned", "quarantineTable": "market.quarantine"},
    "gold": {"tables": ["market.ohlc_1m"]},
}
DEFAULTS = PlatformDefaults(
    producer_image="registry.corp/finlake/finlake-ingestion:1.2.3",
    spark_image="registry.corp/finlake/finlake-spark:1.2.3",
    image_pull_secrets=("corp-registry",),
)


def _images(children: list[dict[str, Any]]) -> set[str]:
    images = set()
    for child in children:
        spec = child.get("spec", {})
        if child["kind"] in ("SparkApplication", "ScheduledSparkApplication"):
            images.add(spec.get("template", spec)["image"])
    return images


def test_a_pipeline_naming_no_image_runs_the_platform_s_spark_image() -> None:
    plain = MedallionPipelineSpec.model_validate({"layers": LAYERS})
    children = build_medallion_pipeline_children(OWNER, with_platform_image(plain, DEFAULTS))
    assert _images(children) == {"registry.corp/finlake/finlake-spark:1.2.3"}
    own = MedallionPipelineSpec.model_validate(
        {"layers": LAYERS, "spark": {"image": "mine/spark:9"}}
    )
    children = build_medallion_pipeline_children(OWNER, with_platform_image(own, DEFAULTS))
    assert _images(children) == {"mine/spark:9"}
    # Without a platform image: the spec's default.
    unchanged = with_platform_image(plain, PlatformDefaults())
    assert unchanged.spark.image == plain.spark.image


def test_every_pod_the_operator_creates_pulls_with_the_platform_s_secrets() -> None:
    pipeline = MedallionPipelineSpec.model_validate({"layers": LAYERS})
    children = build_medallion_pipeline_children(OWNER, pipeline)
    with_pull_secrets(children, DEFAULTS.image_pull_secrets)
    for child in children:
        spec = child.get("spec", {})
        if child["kind"] == "SparkApplication":
            assert spec["imagePullSecrets"] == ["corp-registry"]
        elif child["kind"] == "ScheduledSparkApplication":
            assert spec["template"]["imagePullSecrets"] == ["corp-registry"]
        else:
            assert "imagePullSecrets" not in spec
    feed = MarketFeedSpec.model_validate({"source": "simulate"})
    plan = plan_market_feed(OWNER, feed, None, DEFAULTS)  # type: ignore[arg-type]
    (deployment,) = [c for c in plan.children if c["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "corp-registry"}]
    assert pod["containers"][0]["image"] == "registry.corp/finlake/finlake-ingestion:1.2.3"
    own = MarketFeedSpec.model_validate({"source": "simulate", "producer": {"image": "mine/p:1"}})
    plan = plan_market_feed(OWNER, own, None, DEFAULTS)  # type: ignore[arg-type]
    (deployment,) = [c for c in plan.children if c["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "mine/p:1"
    # Without pull Secrets nothing is added.
    rule = {
        "symbols": ["AAPL"],
        "condition": {"type": "price_cross", "level": 1, "direction": "above"},
    }
    children = rule_plan(OWNER, AlertRuleSpec.model_validate(rule), "alerting:1").children
    with_pull_secrets(children, ())
    (alerting,) = [c for c in children if c["kind"] == "Deployment"]
    assert "imagePullSecrets" not in alerting["spec"]["template"]["spec"]


def test_the_registry_password_reaches_every_process_that_reads_schemas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from finlake.config import FinlakeSettings
    from finlake_operator.builders.common import REGISTRY_PASSWORD_ENV, with_registry_password

    pipeline = MedallionPipelineSpec.model_validate({"layers": LAYERS})
    children = build_medallion_pipeline_children(OWNER, pipeline)
    feed = MarketFeedSpec.model_validate({"source": "simulate"})
    children += plan_market_feed(OWNER, feed, None).children  # type: ignore[arg-type]
    condition = {"type": "price_cross", "level": 1, "direction": "above"}
    rule = AlertRuleSpec.model_validate({"symbols": ["AAPL"], "condition": condition})
    children += rule_plan(OWNER, rule, "alerting:1").children
    with_registry_password(children, ("finlake-registry", "password"))
    with_registry_password(children, ("finlake-registry", "password"))  # idempotent
    reference = {"secretKeyRef": {"name": "finlake-registry", "key": "password"}}
    envs: dict[str, list[dict[str, Any]]] = {}
    for child in children:
        spec = child.get("spec", {})
        name = f"{child['kind']} {child['metadata']['name']}"
        if child["kind"] == "Deployment":
            envs[name] = spec["template"]["spec"]["containers"][0]["env"]
        elif child["kind"] in ("SparkApplication", "ScheduledSparkApplication"):
            envs[name] = spec.get("template", spec)["driver"]["env"]
    assert len(envs) == 6  # producer, alerting, stream, detection, batch, maintenance
    for name, env in envs.items():
        found = [e for e in env if e["name"] == REGISTRY_PASSWORD_ENV]
        assert [e["valueFrom"] for e in found] == [reference], name
    # The variable is the one the settings read.
    monkeypatch.setenv(REGISTRY_PASSWORD_ENV, "pw")
    password = FinlakeSettings().registry.basic_auth_password
    assert password is not None
    assert password.get_secret_value() == "pw"


def test_the_feature_store_password_reaches_the_transactions_batch_alone() -> None:
    from finlake.ml.settings import MlSettings
    from finlake_operator.builders.common import FEATURE_STORE_PASSWORD_ENV
    from finlake_operator.builders.medallion_application import batch_name
    from finlake_operator.handlers.medallion_pipeline import plan_medallion_pipeline
    from finlake_operator.kube import ObjectRef
    from finlake_operator.reconcile import Degradation

    class SecretsHere:
        """The API server's answers the plan asks for: the Secret exists, no batch ran yet."""

        def get(self, ref: ObjectRef) -> dict[str, Any] | None:
            return {"kind": "Secret"} if ref.kind == "Secret" else None

    class NoSecrets:
        def get(self, _: ObjectRef) -> dict[str, Any] | None:
            return None

    owner = Owner(kind="MedallionPipeline", name="payments", namespace="risk", uid="uid-3")
    defaults = PlatformDefaults(feature_store_password=("features-db", "pw"))
    transactions = MedallionPipelineSpec.model_validate({"flow": "transactions"})
    plan = plan_medallion_pipeline(owner, transactions, SecretsHere(), defaults=defaults)  # type: ignore[arg-type]
    drivers = {
        child["metadata"]["name"]: child["spec"]["template"]["driver"]["env"]
        for child in plan.children
        if child["kind"] == "ScheduledSparkApplication"
    }
    assert len(drivers) == 2  # the batch and the maintenance
    reference = {"secretKeyRef": {"name": "features-db", "key": "pw"}}
    for name, env in drivers.items():
        found = [e["valueFrom"] for e in env if e["name"] == FEATURE_STORE_PASSWORD_ENV]
        assert found == ([reference] if name == batch_name(owner) else []), name
    # A market pipeline's jobs never get it.
    market = MedallionPipelineSpec.model_validate({"layers": LAYERS})
    plan = plan_medallion_pipeline(OWNER, market, SecretsHere(), defaults=defaults)  # type: ignore[arg-type]
    assert FEATURE_STORE_PASSWORD_ENV not in str(plan.children)
    # A transactions pipeline waits, Degraded, while the Secret is missing from its namespace.
    with pytest.raises(Degradation, match=r"credentials\.featureStorePassword"):
        plan_medallion_pipeline(owner, transactions, NoSecrets(), defaults=defaults)  # type: ignore[arg-type]
    # The variable is the one the ML settings read.
    assert MlSettings.model_config["env_prefix"] + "POSTGRES_PASSWORD" == FEATURE_STORE_PASSWORD_ENV
