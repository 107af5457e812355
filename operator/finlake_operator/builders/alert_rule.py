"""AlertRule -> its entry in the namespace's rules ConfigMap (read by the detection job) and the
alerting Deployment that delivers its firings."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from finlake.contracts.alert_rule import KIND, AlertRuleSpec, ChannelType
from finlake.contracts.resources import API_VERSION
from finlake_operator.builders.common import (
    CONFIG_HASH_ANNOTATION,
    Owner,
    child_labels,
    config_hash,
    hardened_container_security,
    metadata,
    owner_reference,
    platform_env_from,
    selector_labels,
)

APP = "finlake-alerting"
RULES_CONFIG_MAP = "finlake-alert-rules"
RULES_MOUNT = "/etc/finlake/rules"
DEFAULT_IMAGE = "ghcr.io/finlake/alerting:0.1.0"
# The key read from a channel's Secret when the rule names none (as the alerting service does).
DEFAULT_SECRET_KEYS = {ChannelType.EMAIL: "password", ChannelType.SLACK: "webhook-url"}


def secret_env_name(secret: str, key: str) -> str:
    """The variable the alerting service reads a Secret's key from (FINLAKE_SECRET_<NAME>_<KEY>)."""
    # Mirrors finlake_alerting.config.secret_env_name; deployables cannot import each other.
    return "FINLAKE_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", f"{secret}_{key}").upper()


def rules_key(owner: Owner) -> str:
    """The rule's key in the shared rules ConfigMap."""
    return f"{owner.name}.yaml"


def alerting_name(owner: Owner) -> str:
    """Name of the rule's alerting Deployment."""
    return owner.child_name("alerting")


def rule_document(owner: Owner, rule: AlertRuleSpec) -> str:
    """The rule as the YAML document ``finlake alerts validate`` and the local runner read."""
    document = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": owner.name, "namespace": owner.namespace},
        "spec": rule.wire(),
    }
    return yaml.safe_dump(document, sort_keys=False)


def build_rules_entry(owner: Owner, rule: AlertRuleSpec | None) -> dict[str, Any]:
    """This rule's share of the rules ConfigMap, applied under the rule's own field manager.

    Server-side apply merges the shares of all rules; applying ``None`` (on deletion) removes
    this rule's key and owner reference and leaves the other rules alone.
    """
    share: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": RULES_CONFIG_MAP,
            "namespace": owner.namespace,
            "labels": {
                "app.kubernetes.io/name": APP,
                "app.kubernetes.io/component": "rules",
                "app.kubernetes.io/part-of": "finlake",
                "app.kubernetes.io/managed-by": "finlake-operator",
            },
        },
    }
    if rule is not None:
        share["metadata"]["ownerReferences"] = [owner_reference(owner, controller=False)]
        share["data"] = {rules_key(owner): rule_document(owner, rule)}
    return share


def _secret_env(rule: AlertRuleSpec) -> list[dict[str, Any]]:
    env = []
    for channel in rule.channels:
        if channel.secret_ref is None:
            continue
        key = channel.secret_ref.key or DEFAULT_SECRET_KEYS.get(channel.type, "value")
        ref = {"name": channel.secret_ref.name, "key": key}
        name = secret_env_name(channel.secret_ref.name, key)
        env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return env


def secret_names(rule: AlertRuleSpec) -> list[str]:
    """The Secrets the rule's channels reference (they must exist)."""
    return sorted({c.secret_ref.name for c in rule.channels if c.secret_ref is not None})


def build_alerting_deployment(
    owner: Owner, rule: AlertRuleSpec, image: str = DEFAULT_IMAGE
) -> dict[str, Any]:
    """The Deployment that routes this rule's firings to its channels."""
    component = "alerting"
    container = {
        "name": "alerting",
        "image": image,
        "command": ["python", "-m", "finlake_alerting"],
        "envFrom": platform_env_from(),
        "env": [
            {
                "name": "FINLAKE_ALERTING__RULE_PATHS",
                "value": json.dumps([f"{RULES_MOUNT}/{rules_key(owner)}"]),
            },
            *_secret_env(rule),
        ],
        "ports": [{"name": "metrics", "containerPort": 9110, "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}},
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": hardened_container_security(),
        "volumeMounts": [{"name": "rules", "mountPath": RULES_MOUNT, "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, alerting_name(owner), component, APP),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(owner, component)},
            "template": {
                "metadata": {
                    "labels": child_labels(owner, component, APP),
                    "annotations": {CONFIG_HASH_ANNOTATION: config_hash(rule.wire())},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "rules",
                            "configMap": {
                                "name": RULES_CONFIG_MAP,
                                "items": [{"key": rules_key(owner), "path": rules_key(owner)}],
                            },
                        }
                    ],
                },
            },
        },
    }
