"""AlertRule -> its entry in the namespace's rules ConfigMap (read by the detection job) and the
alerting Deployment that delivers its firings."""

from __future__ import annotations

import json
from typing import Any

from finlake.contracts.alert_rule import KIND, AlertRuleSpec
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
    owner_reference,
    platform_env_from,
    resource_document,
    selector_labels,
    state_pod_security,
    state_volume,
)

APP = "finlake-alerting"
RULES_CONFIG_MAP = "finlake-alert-rules"
RULES_MOUNT = "/etc/finlake/rules"
STATE_MOUNT = "/var/lib/finlake"
SERVICE_UID = 10001
METRICS_PORT = 9110
DEFAULT_IMAGE = "ghcr.io/finlake/finlake-alerting:0.1.0"
SecretKeyRef = tuple[str, str]
"""(Secret name, key)."""


def rules_key(owner: Owner) -> str:
    """The rule's key in the shared rules ConfigMap."""
    return f"{owner.name}.yaml"


def alerting_name(owner: Owner) -> str:
    """Name of the rule's alerting Deployment."""
    return owner.child_name("alerting")


def alerting_state_name(owner: Owner) -> str:
    """Name of the claim holding the rule's alert service state (``spec.persistence``)."""
    return owner.child_name("alerting-state")


def rule_document(owner: Owner, rule: AlertRuleSpec) -> str:
    """The rule as the YAML document ``finlake alerts validate`` and the local runner read."""
    return resource_document(owner, KIND, rule.wire())


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


def _secret_sources(rule: AlertRuleSpec) -> list[tuple[int, str, SecretKeyRef]]:
    """(channel index, variable, (Secret, key)) of every channel reading a Secret."""
    sources = []
    for index, channel in enumerate(rule.channels):
        name, key = channel.secret_env(), channel.secret_key()
        if channel.secret_ref is not None and name is not None and key is not None:
            sources.append((index, name, (channel.secret_ref.name, key)))
    return sources


def _secret_env(rule: AlertRuleSpec) -> list[dict[str, Any]]:
    """One variable per Secret key, however many channels share it: the API server refuses a
    Deployment naming a variable twice (a keyed list), and one value serves them all."""
    env: dict[str, dict[str, Any]] = {}
    for _, name, (secret, key) in _secret_sources(rule):
        ref = {"name": secret, "key": key}
        env.setdefault(name, {"name": name, "valueFrom": {"secretKeyRef": ref}})
    return list(env.values())


def secret_env_conflicts(rule: AlertRuleSpec) -> list[str]:
    """Channels whose different Secret keys would reach the alert service as one variable.

    The variable is made from the Secret's and the key's names (``secret_env_name``), so Secret
    ``a-b`` key ``c`` and Secret ``a`` key ``b-c`` are both FINLAKE_SECRET_A_B_C: one variable
    cannot hold two values."""
    claimed: dict[str, tuple[int, SecretKeyRef]] = {}
    conflicts = []
    for index, name, source in _secret_sources(rule):
        first, taken = claimed.setdefault(name, (index, source))
        if taken != source:
            conflicts.append(
                f"spec.channels[{index}].secretRef: Secret {source[0]} key {source[1]} would "
                f"reach the alert service as {name}, which spec.channels[{first}] already takes "
                f"for Secret {taken[0]} key {taken[1]}; rename the Secret or the key"
            )
    return conflicts


def alerting_settings(owner: Owner) -> dict[str, str]:
    """The alert service's FINLAKE_* settings for this rule's Deployment (names: its Settings).

    One Deployment per AlertRule, so each has its own consumer group and delivers only the events
    of its rule: every event is delivered by exactly one Deployment.
    """
    return {
        "FINLAKE_HOME": STATE_MOUNT,
        "FINLAKE_ALERTING__HOST": "0.0.0.0",
        "FINLAKE_ALERTING__PORT": str(METRICS_PORT),
        "FINLAKE_ALERTING__RULE_PATHS": json.dumps([f"{RULES_MOUNT}/{rules_key(owner)}"]),
        "FINLAKE_ALERTING__ONLY_LISTED_RULES": "true",
        "FINLAKE_ALERTING__GROUP_ID": f"finlake-alerting.{owner.namespace}.{owner.name}",
    }


def secret_names(rule: AlertRuleSpec) -> list[str]:
    """The Secrets the rule's channels reference (they must exist)."""
    return sorted({c.secret_ref.name for c in rule.channels if c.secret_ref is not None})


DASHBOARD_KEY_ENV = "FINLAKE_ALERTING__DASHBOARD__API_KEY"


def _dashboard_key_env(dashboard_key: SecretKeyRef | None) -> list[dict[str, Any]]:
    if dashboard_key is None:
        return []
    name, key = dashboard_key
    return [{"name": DASHBOARD_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}]


def build_alerting_deployment(
    owner: Owner,
    rule: AlertRuleSpec,
    image: str = DEFAULT_IMAGE,
    dashboard_key: SecretKeyRef | None = None,
) -> dict[str, Any]:
    """The Deployment that routes this rule's firings to its channels (``dashboard_key``: the
    platform's query API key Secret and key, for dashboard channels naming none)."""
    component = "alerting"
    container = {
        "name": "alerting",
        "image": image,
        "command": ["python", "-m", "finlake_alerting"],
        "envFrom": platform_env_from(),
        "env": [
            *({"name": name, "value": value} for name, value in alerting_settings(owner).items()),
            *_secret_env(rule),
            *_dashboard_key_env(dashboard_key),
        ],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}},
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": hardened_container_security(),
        "volumeMounts": [
            {"name": "rules", "mountPath": RULES_MOUNT, "readOnly": True},
            # The delivery log (SQLite) on a read-only root filesystem.
            {"name": STATE_VOLUME, "mountPath": STATE_MOUNT},
            TMP_MOUNT,
        ],
    }
    claim = alerting_state_name(owner) if rule.persistence is not None else None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, alerting_name(owner), component, APP),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(owner, component)},
            "strategy": deployment_strategy(single_writer=claim is not None),
            "template": {
                "metadata": {
                    "labels": child_labels(owner, component, APP),
                    # Restart only for what the pod spec takes from the rule (its Secrets'
                    # variables): an edited rule reaches the running service through the
                    # mounted ConfigMap, which it reloads, keeping its silences, cooldowns and
                    # delivery log (the state folder is the pod's).
                    "annotations": {
                        CONFIG_HASH_ANNOTATION: config_hash(
                            _secret_env(rule) + _dashboard_key_env(dashboard_key)
                        )
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": state_pod_security(SERVICE_UID, claim),
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "rules",
                            "configMap": {
                                "name": RULES_CONFIG_MAP,
                                "items": [{"key": rules_key(owner), "path": rules_key(owner)}],
                            },
                        },
                        state_volume(claim),
                        TMP_VOLUME,
                    ],
                },
            },
        },
    }


def build_alerting_state_claim(owner: Owner, rule: AlertRuleSpec) -> dict[str, Any] | None:
    """The claim of the rule's alert service state, when the rule asks for persistence."""
    if rule.persistence is None:
        return None
    labels = ("alerting", APP)
    return build_state_claim(owner, alerting_state_name(owner), labels, rule.persistence)


def build_alerting_service(owner: Owner) -> dict[str, Any]:
    """The Service in front of the rule's alert service: its silences API, /metrics, /healthz."""
    component = "alerting"
    return cluster_ip_service(
        owner, alerting_name(owner), (component, APP), selector_labels(owner, component),
        ("http", METRICS_PORT, "metrics"),
    )  # fmt: skip
