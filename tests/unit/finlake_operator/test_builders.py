import re
from pathlib import Path
from typing import Any

import pytest

from finlake.contracts.alert_rule import AlertRuleSpec
from finlake.contracts.market_feed import MarketFeedSpec
from finlake.contracts.medallion_pipeline import MedallionPipelineSpec
from finlake_ingestion.config import IngestionOptions
from finlake_operator.builders.alert_rule import (
    RULES_CONFIG_MAP,
    build_alerting_deployment,
    build_rules_entry,
)
from finlake_operator.builders.common import Owner
from finlake_operator.builders.market_feed import build_market_feed_children
from finlake_operator.builders.medallion_pipeline import build_medallion_pipeline_children

OWNER = Owner(kind="MarketFeed", name="us-tech", namespace="markets", uid="uid-1")
PIPELINE_OWNER = Owner(kind="MedallionPipeline", name="market", namespace="markets", uid="uid-2")
RULE_OWNER = Owner(kind="AlertRule", name="breakout", namespace="markets", uid="uid-3")
LAYERS = {
    "bronze": {"table": "market.raw"},
    "silver": {"table": "market.cleaned", "quarantineTable": "market.quarantine"},
    "gold": {"tables": ["market.ohlc_1m", "market.ohlc_1h"]},
}


def _by_kind(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {child["kind"]: child for child in children}


def test_feed_children_are_named_owned_and_labelled() -> None:
    feed = MarketFeedSpec.model_validate({"source": "yahoo", "symbols": ["AAPL", "MSFT"]})
    children = build_market_feed_children(OWNER, feed, ("AAPL", "MSFT"))
    assert [(c["kind"], c["metadata"]["name"]) for c in children] == [
        ("ConfigMap", "us-tech-producer"),
        ("Deployment", "us-tech-producer"),
        ("Service", "us-tech-producer-metrics"),
    ]
    for child in children:
        (reference,) = child["metadata"]["ownerReferences"]
        assert reference == {
            "apiVersion": "finlake.io/v1alpha1",
            "kind": "MarketFeed",
            "name": "us-tech",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert child["metadata"]["namespace"] == "markets"
        assert child["metadata"]["labels"]["app.kubernetes.io/instance"] == "us-tech"


def test_feed_deployment_reads_its_config_map_and_rolls_on_change() -> None:
    feed = MarketFeedSpec.model_validate({"source": "yahoo", "symbols": ["AAPL"]})
    deployment = _by_kind(build_market_feed_children(OWNER, feed, ("AAPL",)))["Deployment"]
    spec = deployment["spec"]
    assert spec["strategy"]["type"] == "Recreate"  # one Yahoo poller at a time
    (container,) = spec["template"]["spec"]["containers"]
    assert {"configMapRef": {"name": "us-tech-producer"}} in container["envFrom"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    other = _by_kind(build_market_feed_children(OWNER, feed, ("AAPL", "JPM")))["Deployment"]
    annotation = "finlake.io/config-hash"
    assert (
        other["spec"]["template"]["metadata"]["annotations"][annotation]
        != spec["template"]["metadata"]["annotations"][annotation]
    )


def test_a_stopping_producer_has_time_to_flush_its_deliveries() -> None:
    feed = MarketFeedSpec.model_validate({"source": "simulate"})
    deployment = _by_kind(build_market_feed_children(OWNER, feed, ()))["Deployment"]
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace == 45
    # More than the producer's flush on SIGTERM, and what the chart's ingestion Deployment gives.
    assert grace > IngestionOptions().flush_timeout_s
    chart = Path(__file__).resolve().parents[3] / "charts/finlake/templates/ingestion"
    (in_chart,) = re.findall(
        r"terminationGracePeriodSeconds: (\d+)", (chart / "deployment.yaml").read_text()
    )
    assert int(in_chart) == grace


def test_feed_symbols_from_a_config_map_land_in_the_producer_settings() -> None:
    feed = MarketFeedSpec.model_validate({"source": "yahoo", "symbolsFrom": {"name": "list"}})
    config_map = _by_kind(build_market_feed_children(OWNER, feed, ("JPM", "XOM")))["ConfigMap"]
    assert config_map["data"]["FINLAKE_YAHOO__SYMBOLS"] == "JPM,XOM"


def test_long_names_stay_valid_and_deterministic() -> None:
    owner = Owner(kind="MarketFeed", name="x" * 63, namespace="n", uid="u")
    name = owner.child_name("producer-metrics")
    assert len(name) <= 63
    assert name == owner.child_name("producer-metrics")
    assert name != owner.child_name("producer")


def test_pipeline_builds_stream_batch_and_maintenance() -> None:
    pipeline = MedallionPipelineSpec.model_validate(
        {
            "layers": LAYERS,
            "batch": {"timeZone": "America/New_York"},
            "catalogSecret": {"name": "catalog"},
        }
    )
    children = build_medallion_pipeline_children(PIPELINE_OWNER, pipeline)
    names = [(c["kind"], c["metadata"]["name"]) for c in children]
    assert names == [
        ("ConfigMap", "market-pipeline"),
        ("SparkApplication", "market-stream"),
        ("Service", "market-stream-metrics"),
        ("SparkApplication", "market-alert-detection"),
        ("ScheduledSparkApplication", "market-batch"),
        ("ScheduledSparkApplication", "market-maintenance"),
    ]
    stream = children[1]["spec"]
    assert stream["type"] == "Python"
    assert stream["sparkVersion"] == "4.1.1"
    assert stream["arguments"] == ["market-stream"]
    assert stream["restartPolicy"]["type"] == "Always"
    assert {"secretRef": {"name": "catalog"}} in stream["driver"]["envFrom"]
    env = {e["name"]: e["value"] for e in stream["driver"]["env"]}
    assert env["FINLAKE_MARKET__TOPIC"] == "market-data"
    assert env["FINLAKE_PIPELINE_FILE"] == "/etc/finlake/pipeline/pipeline.yaml"
    batch = children[4]["spec"]
    assert batch["schedule"] == "5 * * * *"
    assert batch["timeZone"] == "America/New_York"
    assert batch["template"]["arguments"] == ["market-batch"]
    maintenance = children[5]["spec"]
    assert maintenance["template"]["arguments"][:5] == [
        "maintenance",
        "--target-file-size-mb",
        "128",
        "--snapshot-retention",
        "7d",
    ]
    assert "market.ohlc_1h" in maintenance["template"]["arguments"]
    # The stream's own tables too: a run record MERGEd per micro-batch is thousands of commits a
    # day, read back by every batch.
    assert maintenance["template"]["arguments"][-2:] == [
        "market.dead_letter",
        "market.pipeline_runs",
    ]


def test_pipeline_config_map_holds_the_document_a_local_run_loads(tmp_path: Any) -> None:
    from finlake.contracts.resources import load_resources

    pipeline = MedallionPipelineSpec.model_validate({"layers": LAYERS})
    config_map = build_medallion_pipeline_children(PIPELINE_OWNER, pipeline)[0]
    path = tmp_path / "pipeline.yaml"
    path.write_text(config_map["data"]["pipeline.yaml"])
    (resource,) = load_resources([path])
    assert resource.spec == pipeline


def test_alert_rule_references_secrets_by_name_only() -> None:
    rule = AlertRuleSpec.model_validate(
        {
            "symbols": ["AAPL"],
            "condition": {"type": "price_cross", "level": 250, "direction": "above"},
            "channels": [{"type": "slack", "secretRef": {"name": "slack"}}],
        }
    )
    deployment = build_alerting_deployment(RULE_OWNER, rule)
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "FINLAKE_SECRET_SLACK_WEBHOOK_URL",
        "valueFrom": {"secretKeyRef": {"name": "slack", "key": "webhook-url"}},
    } in env
    entry = build_rules_entry(RULE_OWNER, rule)
    assert entry["metadata"]["name"] == RULES_CONFIG_MAP
    assert entry["metadata"]["ownerReferences"][0]["controller"] is False
    assert "breakout.yaml" in entry["data"]
    removal = build_rules_entry(RULE_OWNER, None)
    assert "data" not in removal
    assert "ownerReferences" not in removal["metadata"]


def test_a_transactions_pipeline_builds_its_hourly_batch_and_maintenance_and_no_stream() -> None:
    pipeline = MedallionPipelineSpec.model_validate(
        {"flow": "transactions", "catalogSecret": {"name": "catalog"}}
    )
    owner = Owner(kind="MedallionPipeline", name="transactions", namespace="tx", uid="uid-4")
    children = build_medallion_pipeline_children(owner, pipeline)
    assert [(c["kind"], c["metadata"]["name"]) for c in children] == [
        ("ConfigMap", "transactions-pipeline"),
        ("ScheduledSparkApplication", "transactions-batch"),
        ("ScheduledSparkApplication", "transactions-maintenance"),
    ]
    batch = children[1]["spec"]
    assert batch["schedule"] == "5 * * * *"
    assert batch["concurrencyPolicy"] == "Forbid"
    template = batch["template"]
    assert template["arguments"] == ["transactions-batch"]
    assert template["restartPolicy"]["type"] == "OnFailure"
    assert {"secretRef": {"name": "catalog"}} in template["driver"]["envFrom"]
    env = {e["name"]: e["value"] for e in template["driver"]["env"]}
    assert env["FINLAKE_PIPELINE_FILE"] == "/etc/finlake/pipeline/pipeline.yaml"
    assert not [name for name in env if name.startswith("FINLAKE_MARKET__")]  # no stream here
    maintenance = children[2]["spec"]["template"]["arguments"]
    assert maintenance[0] == "maintenance"
    assert maintenance[-6:] == [
        "transactions.raw",
        "transactions.validated",
        "transactions.quarantine",
        "transactions.summary",
        "transactions.uploads",
        "transactions.batch_runs",
    ]


def test_every_child_of_either_flow_is_one_the_pipeline_can_delete() -> None:
    from finlake_operator.builders.medallion_pipeline import possible_children

    market = MedallionPipelineSpec.model_validate({"layers": LAYERS, "persistence": {}})
    transactions = MedallionPipelineSpec.model_validate({"flow": "transactions"})
    possible = {(api, kind, name) for api, kind, name in possible_children(PIPELINE_OWNER)}
    built = {
        (c["apiVersion"], c["kind"], c["metadata"]["name"])
        for spec in (market, transactions)
        for c in build_medallion_pipeline_children(PIPELINE_OWNER, spec)
    }
    assert built == possible


def test_a_transactions_config_map_holds_the_document_its_batch_loads(tmp_path: Any) -> None:
    from finlake.contracts.resources import load_resources

    pipeline = MedallionPipelineSpec.model_validate({"flow": "transactions"})
    config_map = build_medallion_pipeline_children(PIPELINE_OWNER, pipeline)[0]
    document = config_map["data"]["pipeline.yaml"]
    assert "sourceTopic" not in document
    assert "expectations" not in document
    path = tmp_path / "pipeline.yaml"
    path.write_text(document)
    (resource,) = load_resources([path])
    assert resource.spec == pipeline


def test_detection_mounts_the_namespace_s_rules_in_its_driver_only() -> None:
    pipeline = MedallionPipelineSpec.model_validate(
        {"layers": LAYERS, "catalogSecret": {"name": "catalog"}, "detection": {"alertsTopic": "a"}}
    )
    children = build_medallion_pipeline_children(PIPELINE_OWNER, pipeline)
    (detection,) = [c for c in children if c["metadata"]["name"] == "market-alert-detection"]
    assert detection["metadata"]["labels"]["app.kubernetes.io/component"] == "alert-detection"
    spec = detection["spec"]
    assert spec["arguments"] == [
        "alert-detection", "--rules", "/etc/finlake/rules", "--allow-no-rules"
    ]  # fmt: skip
    assert spec["restartPolicy"]["type"] == "Always"
    # The rules ConfigMap the AlertRules write; optional, so no AlertRule yet is no rule.
    state, volume = spec["volumes"]
    assert volume["configMap"] == {"name": RULES_CONFIG_MAP, "optional": True}
    assert spec["driver"]["volumeMounts"] == [
        {"name": state["name"], "mountPath": "/var/lib/finlake"},
        {"name": volume["name"], "mountPath": "/etc/finlake/rules", "readOnly": True},
    ]
    # Executors get the rules with their tasks: no mount, no rule path.
    assert "volumeMounts" not in spec["executor"]
    assert {"secretRef": {"name": "catalog"}} in spec["executor"]["envFrom"]
    env = {e["name"]: e["value"] for e in spec["driver"]["env"]}
    assert env["FINLAKE_DETECTION__SOURCE_TOPIC"] == "market-data"
    assert env["FINLAKE_DETECTION__ALERTS_TOPIC"] == "a"
    assert not [name for name in env if name.startswith("FINLAKE_MARKET__")]
    assert spec["driver"]["configMaps"] == [
        {"name": "market-pipeline", "path": "/etc/finlake/pipeline"}
    ]


def test_detection_switched_off_builds_no_detection() -> None:
    pipeline = MedallionPipelineSpec.model_validate(
        {"layers": LAYERS, "detection": {"enabled": False}}
    )
    children = build_medallion_pipeline_children(PIPELINE_OWNER, pipeline)
    names = [child["metadata"]["name"] for child in children]
    assert "market-alert-detection" not in names
    assert "market-stream" in names


def _drivers(extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stream's and detection's SparkApplications of the pipeline with ``extra``."""
    pipeline = MedallionPipelineSpec.model_validate({"layers": LAYERS, **extra})
    children = build_medallion_pipeline_children(PIPELINE_OWNER, pipeline)
    return {c["metadata"]["name"]: c for c in children if c["kind"] == "SparkApplication"}


@pytest.mark.parametrize(
    "edit",
    [
        {"batch": {"suspend": True}},
        {"batch": {"schedule": "10 * * * *", "timeZone": "Europe/Paris"}},
        {"freshness": {"maxLag": "15m"}},
        {"maintenance": {"schedule": "0 3 * * *", "snapshotRetention": "3d"}},
    ],
)
def test_a_batch_maintenance_or_freshness_edit_leaves_the_streaming_drivers_alone(
    edit: dict[str, Any],
) -> None:
    # The spark-operator resubmits a SparkApplication on any change of its spec.
    assert _drivers(edit) == _drivers({})


def test_an_edit_a_streaming_job_reads_restarts_that_job_only() -> None:
    before = _drivers({})
    rules = [{"name": "positive_price", "condition": "price > 0"}]
    after = _drivers({"expectations": rules})
    assert after["market-stream"] != before["market-stream"]  # read from the pipeline document
    assert after["market-alert-detection"] == before["market-alert-detection"]
    moved = _drivers({"layers": {**LAYERS, "gold": {"tables": ["market.bars_1m"]}}})
    assert moved["market-stream"] != before["market-stream"]
    tuned = _drivers({"detection": {"statePartitions": 4}})
    assert tuned["market-alert-detection"] != before["market-alert-detection"]
    assert tuned["market-stream"] == before["market-stream"]


def _schedules(pipeline: MedallionPipelineSpec) -> dict[str, dict[str, Any]]:
    """The specs of the pipeline's ScheduledSparkApplications, by name."""
    children = build_medallion_pipeline_children(PIPELINE_OWNER, pipeline)
    return {
        c["metadata"]["name"]: c["spec"]
        for c in children
        if c["kind"] == "ScheduledSparkApplication"
    }


def test_suspending_the_batch_leaves_the_maintenance_scheduled() -> None:
    pipeline = MedallionPipelineSpec.model_validate(
        {"layers": LAYERS, "batch": {"suspend": True, "timeZone": "America/New_York"}}
    )
    schedules = _schedules(pipeline)
    assert schedules["market-batch"]["suspend"] is True
    maintenance = schedules["market-maintenance"]
    assert maintenance["suspend"] is False
    assert maintenance["timeZone"] == "America/New_York"  # the batch's, unless it names its own
    assert maintenance["concurrencyPolicy"] == "Forbid"
    own = MedallionPipelineSpec.model_validate(
        {"layers": LAYERS, "maintenance": {"suspend": True, "timeZone": "Europe/Paris"}}
    )
    schedules = _schedules(own)
    assert (schedules["market-maintenance"]["suspend"], schedules["market-batch"]["suspend"]) == (
        True, False,
    )  # fmt: skip
    assert schedules["market-maintenance"]["timeZone"] == "Europe/Paris"
    assert schedules["market-batch"]["timeZone"] == "UTC"
