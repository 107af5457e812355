"""MarketFeed -> producer ConfigMap, producer Deployment and metrics Service."""

from __future__ import annotations

from typing import Any

from finlake.contracts.market_feed import FeedSource, MarketFeedSpec, ingestion_env
from finlake_operator.builders.common import (
    CONFIG_HASH_ANNOTATION,
    Owner,
    child_labels,
    cluster_ip_service,
    config_hash,
    hardened_container_security,
    metadata,
    platform_env_from,
    selector_labels,
)

APP = "finlake-ingestion"
COMPONENT = "producer"


def producer_name(owner: Owner) -> str:
    """Name of the producer ConfigMap and Deployment."""
    return owner.child_name("producer")


def metrics_service_name(owner: Owner) -> str:
    """Name of the producer's metrics Service."""
    return owner.child_name("producer-metrics")


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
        "volumeMounts": [{"name": "state", "mountPath": "/var/lib/finlake"}],
        "env": [{"name": "FINLAKE_HOME", "value": "/var/lib/finlake"}],
    }
    selector = selector_labels(owner, COMPONENT)
    # One Yahoo poller at a time: two would spend the request budget twice.
    strategy = "Recreate" if feed.source is FeedSource.YAHOO else "RollingUpdate"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, producer_name(owner), COMPONENT, APP),
        "spec": {
            "replicas": producer.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": strategy},
            "template": {
                "metadata": {
                    "labels": child_labels(owner, COMPONENT, APP),
                    "annotations": {
                        CONFIG_HASH_ANNOTATION: config_hash(producer_settings(feed, symbols))
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [container],
                    "volumes": [{"name": "state", "emptyDir": {}}],
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


def build_market_feed_children(
    owner: Owner, feed: MarketFeedSpec, symbols: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Every child of a MarketFeed, in apply order."""
    return [
        build_producer_config_map(owner, feed, symbols),
        build_producer_deployment(owner, feed, symbols),
        build_metrics_service(owner, feed),
    ]
