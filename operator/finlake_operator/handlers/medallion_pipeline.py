"""MedallionPipeline: check references, apply the Spark applications, read freshness (a market
pipeline's from its stream's metrics, a transactions pipeline's from its batch runs)."""

from __future__ import annotations

import time
from typing import Any

from finlake.contracts.medallion_pipeline import MedallionPipelineSpec, PipelineFlow
from finlake_operator.builders.common import (
    FEATURE_STORE_PASSWORD_ENV,
    Owner,
    PlatformDefaults,
    with_pull_secrets,
    with_registry_password,
    with_secret_env,
)
from finlake_operator.builders.medallion_application import (
    SPARK_API_VERSION,
    batch_name,
    default_metrics_url,
)
from finlake_operator.builders.medallion_pipeline import (
    build_medallion_pipeline_children,
    possible_children,
)
from finlake_operator.freshness import (
    SCHEDULED_APP_LABEL,
    Freshness,
    evaluate_batch_freshness,
    evaluate_freshness,
    fetch_metrics,
    last_success,
)
from finlake_operator.kube import Kube, ObjectRef
from finlake_operator.observe import Observed
from finlake_operator.reconcile import Degradation, Plan
from finlake_operator.status import Condition, Reason

KIND = "MedallionPipeline"
PLURAL = "medallionpipelines"


def require_secret(kube: Kube, namespace: str, name: str, field: str) -> None:
    """Degraded (and retried) while a referenced Secret is missing; its content is never read."""
    if kube.get(ObjectRef("v1", "Secret", namespace, name)) is None:
        raise Degradation(
            Reason.SECRET_NOT_FOUND, f"{field}: Secret {name} not found in {namespace}"
        )


def children_refs(owner: Owner) -> list[ObjectRef]:
    """Every child a pipeline of any flow can have (what deleting the pipeline deletes)."""
    return [
        ObjectRef(api_version, kind, owner.namespace, name)
        for api_version, kind, name in possible_children(owner)
    ]


def batch_runs(owner: Owner, kube: Kube) -> list[dict[str, Any]]:
    """The SparkApplications the pipeline's batch schedule has created (its kept runs)."""
    runs = ObjectRef(SPARK_API_VERSION, "SparkApplication", owner.namespace, "")
    return kube.list(runs, f"{SCHEDULED_APP_LABEL}={batch_name(owner)}")


def with_platform_image(
    pipeline: MedallionPipelineSpec, defaults: PlatformDefaults
) -> MedallionPipelineSpec:
    """The pipeline with the platform's Spark image, unless it names its own."""
    if not defaults.spark_image or "image" in pipeline.spark.model_fields_set:
        return pipeline
    spark = pipeline.spark.model_copy(update={"image": defaults.spark_image})
    return pipeline.model_copy(update={"spark": spark})


def require_platform_secrets(owner: Owner, kube: Kube, defaults: PlatformDefaults) -> None:
    """Degraded (and retried) while a Secret the chart names for the children is missing here."""
    if defaults.registry_password is not None:
        require_secret(
            kube, owner.namespace, defaults.registry_password[0],
            "the schema registry password (chart: credentials.registryPassword)",
        )  # fmt: skip


def with_feature_store_password(
    owner: Owner, children: list[dict[str, Any]], secret: tuple[str, str] | None
) -> None:
    """Give the feature store's password to the transactions batch alone: it materializes the
    fraud features after each run (no other Spark job touches the feature store)."""
    batch = [
        child
        for child in children
        if child["kind"] == "ScheduledSparkApplication"
        and child["metadata"]["name"] == batch_name(owner)
    ]
    with_secret_env(batch, FEATURE_STORE_PASSWORD_ENV, secret)


def plan_medallion_pipeline(
    owner: Owner,
    pipeline: MedallionPipelineSpec,
    kube: Kube,
    *,
    metrics_timeout_s: float = 2.0,
    defaults: PlatformDefaults | None = None,
) -> Plan:
    """The pipeline's children (and those of the other flow, to delete), its freshness
    conditions and summary (``defaults``: the chart's Spark image for a pipeline naming none,
    image pull Secrets)."""
    defaults = defaults or PlatformDefaults()
    require_platform_secrets(owner, kube, defaults)
    if pipeline.flow is PipelineFlow.TRANSACTIONS and defaults.feature_store_password is not None:
        require_secret(
            kube, owner.namespace, defaults.feature_store_password[0],
            "the feature store password (chart: credentials.featureStorePassword)",
        )  # fmt: skip
    pipeline = with_platform_image(pipeline, defaults)
    if pipeline.catalog_secret is not None:
        require_secret(kube, owner.namespace, pipeline.catalog_secret.name, "spec.catalogSecret")
    summary: dict[str, Any] = {}
    children = build_medallion_pipeline_children(owner, pipeline)
    with_pull_secrets(children, defaults.image_pull_secrets)
    with_registry_password(children, defaults.registry_password)
    if pipeline.flow is PipelineFlow.TRANSACTIONS:
        with_feature_store_password(owner, children, defaults.feature_store_password)
    wanted = {(child["kind"], child["metadata"]["name"]) for child in children}
    obsolete = [ref for ref in children_refs(owner) if (ref.kind, ref.name) not in wanted]

    def freshness(_: list[Observed], now: str) -> list[Condition]:
        # Listed once the children are applied: a missing spark-operator CRD is Degraded there.
        runs = batch_runs(owner, kube)
        summary["lastSuccess"] = last_success(runs)
        result: Freshness
        if pipeline.flow is PipelineFlow.TRANSACTIONS:
            result = evaluate_batch_freshness(
                runs, pipeline.freshness, time.time(), now, owner.generation
            )
        else:
            url = pipeline.freshness.metrics_url or default_metrics_url(owner, pipeline)
            result = evaluate_freshness(
                fetch_metrics(url, metrics_timeout_s),
                pipeline.freshness,
                time.time(),
                now,
                owner.generation,
            )
        summary["lag"] = result.lag
        return result.conditions

    return Plan(children=children, extra_conditions=freshness, summary=summary, obsolete=obsolete)
