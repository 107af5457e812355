"""MarketFeed -> producer ConfigMap, producer Deployment and metrics Service."""

from __future__ import annotations

from typing import Any

from finlake.contracts.market_feed import FeedSource, MarketFeedSpec, ingestion_env
from finlake_operator.builders.common import (
    CONFIG_HASH_ANNOTATION,
    STATE_VOLUME,
    TMP_MOUNT,
    TMP_VOLUME,
    Owner,
    build_state_claim,
    child_labels,
    cluster_ip_service,
    config_hash,
    deployment_strategy,
    hardened_container_security,
    metadata,
    platform_env_from,
    selector_labels,
    state_pod_security,
    state_volume,
)

APP = "finlake-ingestion"
COMPONENT = "producer"
STATE_MOUNT = "/var/lib/finlake"
PRODUCER_UID = 10001
PRODUCER_GRACE_PERIOD_S = 45
"""Seconds a stopping producer has before SIGKILL, as in the chart's ingestion Deployment: long
enough to flush its deliveries on SIGTERM (FINLAKE_INGESTION__FLUSH_TIMEOUT_S, 30 s); Kubernetes'
default, 30 s, would kill it while a slow flush still runs and lose what it held."""


def producer_name(owner: Owner) -> str:
    """Name of the producer ConfigMap and Deployment."""
    return owner.child_name("producer")


def metrics_service_name(owner: Owner) -> str:
    """Name of the producer's metrics Service."""
    return owner.child_name("producer-metrics")


def producer_state_name(owner: Owner) -> str:
    """Name of the claim holding the producer's state (``producer.persistence``)."""
    return owner.child_name("producer-state")


def producer_settings(feed: MarketFeedSpec, symbols: tuple[str, ...]) -> dict[str, str]:
    """The producer's FINLAKE_* env; ``symbols`` are resolved (inline or from the ConfigMap)."""
    env = ingestion_env(feed)
    if feed.source is FeedSource.YAHOO:
        env["FINLAKE_YAHOO__SYMBOLS"] = ",".join(symbols)
    env["FINLAKE_INGESTION__HTTP_HOST"] = "0.0.0.0"
    return env


def build_producer_config_map(
    owner: Owner, feed: MarketFeedSpec, symbols: tuple[str, ...]
) -> dict[str, Any]:
    """The ConfigMap the producer reads its settings from."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, producer_name(owner), COMPONENT, APP),
        "data": producer_settings(feed, symbols),
    }


def build_producer_deployment(
    owner: Owner, feed: MarketFeedSpec, symbols: tuple[str, ...]
) -> dict[str, Any]:
    """The producer Deployment; a changed setting rolls its pods (config hash annotation)."""
    producer = feed.producer
    resources = producer.resources
    limits = {"memory": resources.memory_limit}
    if resources.cpu_limit is not None:
        limits["cpu"] = resources.cpu_limit
    probe = {"port": "metrics", "scheme": "HTTP"}
    container = {
        "name": "producer",
        "image": producer.image,
        "imagePullPolicy": producer.image_pull_policy,
        "command": ["python", "-m", "finlake_ingestion"],
        "envFrom": [
            *platform_env_from(),
            {"configMapRef": {"name": producer_name(owner)}},
        ],
        "ports": [{"name": "metrics", "containerPort": producer.metrics_port, "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", **probe}, "periodSeconds": 20},
        "readinessProbe": {"httpGet": {"path": "/readyz", **probe}, "periodSeconds": 10},
        "resources": {
            "requests": {"cpu": resources.cpu_request, "memory": resources.memory_request},
            "limits": limits,
        },
        "securityContext": hardened_container_security(),
        "volumeMounts": [{"name": STATE_VOLUME, "mountPath": STATE_MOUNT}, TMP_MOUNT],
        "env": [{"name": "FINLAKE_HOME", "value": STATE_MOUNT}],
    }
    selector = selector_labels(owner, COMPONENT)
    claim = producer_state_name(owner) if producer.persistence is not None else None
    # One Yahoo poller at a time: two would spend the request budget twice.
    single_writer = feed.source is FeedSource.YAHOO or claim is not None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, producer_name(owner), COMPONENT, APP),
        "spec": {
            "replicas": producer.replicas,
            "selector": {"matchLabels": selector},
            "strategy": deployment_strategy(single_writer=single_writer),
            "template": {
                "metadata": {
                    "labels": child_labels(owner, COMPONENT, APP),
                    "annotations": {
                        CONFIG_HASH_ANNOTATION: config_hash(producer_settings(feed, symbols))
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": PRODUCER_GRACE_PERIOD_S,
                    "securityContext": state_pod_security(PRODUCER_UID, claim),
                    "containers": [container],
                    "volumes": [state_volume(claim), TMP_VOLUME],
                },
            },
        },
    }


def build_metrics_service(owner: Owner, feed: MarketFeedSpec) -> dict[str, Any]:
    """The Service Prometheus scrapes the producer's /metrics through."""
    return cluster_ip_service(
        owner, metrics_service_name(owner), (COMPONENT, APP), selector_labels(owner, COMPONENT),
        ("metrics", feed.producer.metrics_port, "metrics"),
    )  # fmt: skip


def build_producer_state_claim(owner: Owner, feed: MarketFeedSpec) -> dict[str, Any] | None:
    """The claim of the producer's state, when the feed asks for persistence."""
    persistence = feed.producer.persistence
    if persistence is None:
        return None
    return build_state_claim(owner, producer_state_name(owner), (COMPONENT, APP), persistence)


def build_market_feed_children(
    owner: Owner, feed: MarketFeedSpec, symbols: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Every child of a MarketFeed, in apply order (its claim before the pod that mounts it)."""
    claim = build_producer_state_claim(owner, feed)
    return [
        *([claim] if claim is not None else []),
        build_producer_config_map(owner, feed, symbols),
        build_producer_deployment(owner, feed, symbols),
        build_metrics_service(owner, feed),
    ]
