"""AlertRule: check the channels' Secrets, apply the rules entry and the alerting Deployment."""

from __future__ import annotations

from finlake.contracts.alert_rule import AlertRuleSpec, ChannelType
from finlake_operator.builders.alert_rule import (
    SecretKeyRef,
    alerting_state_name,
    build_alerting_deployment,
    build_alerting_service,
    build_alerting_state_claim,
    build_rules_entry,
    secret_env_conflicts,
)
from finlake_operator.builders.common import (
    Owner,
    PlatformDefaults,
    with_pull_secrets,
    with_registry_password,
)
from finlake_operator.handlers.medallion_pipeline import require_platform_secrets, require_secret
from finlake_operator.kube import Kube, ObjectRef
from finlake_operator.reconcile import Degradation, Plan
from finlake_operator.status import Reason

KIND = "AlertRule"
PLURAL = "alertrules"


def rules_field_manager(owner: Owner) -> str:
    """The field manager owning this rule's share of the shared rules ConfigMap."""
    return f"finlake-operator/alertrule/{owner.name}"[:128]


def plan_alert_rule(
    owner: Owner,
    rule: AlertRuleSpec,
    kube: Kube,
    image: str,
    dashboard_key: SecretKeyRef | None = None,
    defaults: PlatformDefaults | None = None,
) -> Plan:
    """The rule's children; its rules entry is applied under its own field manager first."""
    conflicts = secret_env_conflicts(rule)
    if conflicts:
        raise Degradation(Reason.INVALID_SPEC, "; ".join(conflicts), retry=False)
    require_dashboard_key(rule, dashboard_key)
    for index, channel in enumerate(rule.channels):
        if channel.secret_ref is not None:
            require_secret(
                kube, owner.namespace, channel.secret_ref.name, f"spec.channels[{index}].secretRef"
            )
    if dashboard_key is not None:
        require_secret(
            kube, owner.namespace, dashboard_key[0], "the dashboard API key (chart: "
            "alerting.dashboard.apiKeySecret)",
        )  # fmt: skip
    kube.apply(build_rules_entry(owner, rule), field_manager=rules_field_manager(owner))
    defaults = defaults or PlatformDefaults()
    require_platform_secrets(owner, kube, defaults)
    plan = rule_plan(owner, rule, image, dashboard_key)
    with_pull_secrets(plan.children, defaults.image_pull_secrets)
    with_registry_password(plan.children, defaults.registry_password)
    return plan


def require_dashboard_key(rule: AlertRuleSpec, dashboard_key: SecretKeyRef | None) -> None:
    """Degraded (not retried) while a dashboard channel would post without an API key.

    The query API refuses such a post (401), which the alert service takes as permanent: every
    firing for the dashboard would be dead-lettered behind a Ready rule. The key is the channel's
    ``secretRef``, else the platform's (``dashboard_key``, from the operator's settings): neither
    changes without a new generation of the rule or a restarted operator, which both reconcile
    again."""
    if dashboard_key is not None:
        return
    keyless = [
        f"spec.channels[{index}]"
        for index, channel in enumerate(rule.channels)
        if channel.type is ChannelType.DASHBOARD and channel.secret_ref is None
    ]
    if keyless:
        # A rule naming no channels has the dashboard alone (the spec's default).
        where = ", ".join(keyless) if "channels" in rule.model_fields_set else "spec.channels"
        raise Degradation(
            Reason.DASHBOARD_KEY_NOT_CONFIGURED,
            f"{where}: a dashboard channel needs a query API key, and neither its "
            "secretRef nor the platform (chart: alerting.dashboard.apiKeySecret) gives one; the "
            "query API would refuse every alert (401) and the alert service dead-letter it",
            retry=False,
        )


def rule_plan(
    owner: Owner, rule: AlertRuleSpec, image: str, dashboard_key: SecretKeyRef | None = None
) -> Plan:
    """The rule's children (its state claim first, when it has one) and the claim it no longer
    asks for."""
    claim = build_alerting_state_claim(owner, rule)
    return Plan(
        children=[
            *([claim] if claim is not None else []),
            build_alerting_deployment(owner, rule, image, dashboard_key),
            build_alerting_service(owner),
        ],
        obsolete=[] if claim is not None else [state_claim_ref(owner)],
    )


def state_claim_ref(owner: Owner) -> ObjectRef:
    """The rule's alert service state claim (deleted when ``persistence`` goes)."""
    return ObjectRef("v1", "PersistentVolumeClaim", owner.namespace, alerting_state_name(owner))


def remove_rule(owner: Owner, kube: Kube) -> None:
    """Drop the rule's key and owner reference from the shared ConfigMap (the others stay)."""
    kube.apply(build_rules_entry(owner, None), field_manager=rules_field_manager(owner))
