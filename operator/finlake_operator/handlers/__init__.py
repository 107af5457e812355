"""kopf handlers: one reconcile per kind on resume/create/update and on a resync timer."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import BaseModel

from finlake.contracts.alert_rule import AlertRuleSpec
from finlake.contracts.market_feed import MarketFeedSpec
from finlake.contracts.medallion_pipeline import MedallionPipelineSpec
from finlake.contracts.resources import GROUP, VERSION
from finlake_operator import metrics
from finlake_operator.builders.alert_rule import alerting_name
from finlake_operator.builders.common import Owner, PlatformDefaults
from finlake_operator.builders.market_feed import metrics_service_name as feed_service
from finlake_operator.builders.market_feed import producer_name
from finlake_operator.config import OperatorOptions
from finlake_operator.handlers import alert_rule, market_feed, medallion_pipeline
from finlake_operator.kube import Kube, ObjectRef
from finlake_operator.reconcile import Planner, delete_children, owner_of, reconcile


def _children_refs(owner: Owner) -> list[ObjectRef]:
    ns = owner.namespace
    if owner.kind == market_feed.KIND:
        return [
            ObjectRef("v1", "Service", ns, feed_service(owner)),
            ObjectRef("apps/v1", "Deployment", ns, producer_name(owner)),
            ObjectRef("v1", "ConfigMap", ns, producer_name(owner)),
            market_feed.state_claim_ref(owner),
        ]
    if owner.kind == medallion_pipeline.KIND:
        return medallion_pipeline.children_refs(owner)
    return [
        ObjectRef("apps/v1", "Deployment", ns, alerting_name(owner)),
        ObjectRef("v1", "Service", ns, alerting_name(owner)),
        alert_rule.state_claim_ref(owner),
    ]


def register(registry: kopf.OperatorRegistry, kube: Kube, options: OperatorOptions) -> None:
    """Register the handlers of every kind in ``registry``."""
    dashboard_key = (
        (options.dashboard_api_key_secret, options.dashboard_api_key_key)
        if options.dashboard_api_key_secret
        else None
    )
    defaults = PlatformDefaults(
        producer_image=options.producer_image,
        spark_image=options.spark_image,
        image_pull_secrets=tuple(options.image_pull_secrets),
        registry_password=(
            (options.registry_password_secret, options.registry_password_key)
            if options.registry_password_secret
            else None
        ),
        feature_store_password=(
            (options.feature_store_password_secret, options.feature_store_password_key)
            if options.feature_store_password_secret
            else None
        ),
    )
    kinds: list[tuple[str, str, type[BaseModel], Planner]] = [
        (
            market_feed.KIND,
            market_feed.PLURAL,
            MarketFeedSpec,
            lambda owner, feed, kube_: market_feed.plan_market_feed(owner, feed, kube_, defaults),
        ),
        (
            medallion_pipeline.KIND,
            medallion_pipeline.PLURAL,
            MedallionPipelineSpec,
            lambda owner, pipeline, kube_: medallion_pipeline.plan_medallion_pipeline(
                owner,
                pipeline,
                kube_,
                metrics_timeout_s=options.metrics_timeout_s,
                defaults=defaults,
            ),
        ),
        (
            alert_rule.KIND,
            alert_rule.PLURAL,
            AlertRuleSpec,
            lambda owner, rule, kube_: alert_rule.plan_alert_rule(
                owner,
                rule,
                kube_,
                options.alerting_image,
                dashboard_key,
                defaults,
            ),
        ),
    ]
    for kind, plural, spec_model, planner in kinds:
        _register_kind(registry, kube, options, kind, plural, spec_model, planner)


def _register_kind(
    registry: kopf.OperatorRegistry,
    kube: Kube,
    options: OperatorOptions,
    kind: str,
    plural: str,
    spec_model: type[BaseModel],
    planner: Planner,
) -> None:
    resource = (GROUP, VERSION, plural)

    def reconcile_handler(
        body: kopf.Body, patch: kopf.Patch, retry: int, logger: kopf.Logger, **_: Any
    ) -> None:
        try:
            reconcile(
                body=body,
                patch=patch,
                kube=kube,
                planner=planner,
                spec_model=spec_model,
                retry=retry,
                logger=logger,
            )
        except kopf.TemporaryError:
            raise
        except Exception:
            metrics.RECONCILE_ERRORS.labels(kind).inc()
            raise

    def resync_handler(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
        # Level-based: re-apply and re-read the children whatever happened to them.
        try:
            reconcile_handler(body=body, patch=patch, retry=0, logger=logger)
        except kopf.TemporaryError as error:
            logger.info(f"resync of {kind} {body['metadata']['name']}: {error}")

    def delete_handler(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        owner = owner_of(body)
        if owner.kind == alert_rule.KIND:
            alert_rule.remove_rule(owner, kube)
        deleted = delete_children(kube, _children_refs(owner), owner.uid)
        if deleted:
            logger.info(f"deleted {', '.join(deleted)}")

    handler_id = f"reconcile-{plural}"
    for decorator in (kopf.on.resume, kopf.on.create, kopf.on.update):
        decorator(*resource, id=handler_id, registry=registry, backoff=5.0)(reconcile_handler)
    kopf.timer(
        *resource,
        id=f"resync-{plural}",
        interval=options.resync_interval_s,
        initial_delay=options.resync_interval_s,
        idle=None,
        registry=registry,
    )(resync_handler)
    kopf.on.delete(*resource, id=f"cleanup-{plural}", registry=registry)(delete_handler)
