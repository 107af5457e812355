"""The operator's alerting Deployment against the alert service it runs: every variable it sets
is a setting the service reads, with the value the Deployment's ports, mounts and probes expect."""

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from finlake.contracts.alert_rule import AlertRuleSpec
from finlake_alerting.config import Settings
from finlake_alerting.credentials import channel_secret
from finlake_operator.builders.alert_rule import (
    RULES_MOUNT,
    build_alerting_deployment,
    build_alerting_service,
)
from finlake_operator.builders.common import CONFIG_HASH_ANNOTATION, Owner

OWNER = Owner(kind="AlertRule", name="breakout", namespace="markets", uid="uid-3")
RULE = AlertRuleSpec.model_validate(
    {
        "symbols": ["AAPL"],
        "condition": {"type": "price_cross", "level": 250, "direction": "above"},
        "channels": [
            {"type": "dashboard"},
            {"type": "slack", "secretRef": {"name": "alerts-slack"}},
            {"type": "email", "to": ["ops@example.com"], "secretRef": {"name": "smtp"}},
        ],
    }
)


def _container() -> dict[str, Any]:
    deployment = build_alerting_deployment(OWNER, RULE, "ghcr.io/finlake/finlake-alerting:0.1.0")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _is_setting(model: type[BaseModel], path: list[str]) -> bool:
    """Whether FINLAKE_<A>__<B>... names a (nested) field of the settings model."""
    field = model.model_fields.get(path[0].lower())
    if field is None:
        return False
    if len(path) == 1:
        return True
    nested = field.annotation
    return (
        isinstance(nested, type) and issubclass(nested, BaseModel) and _is_setting(nested, path[1:])
    )


def test_every_plain_variable_is_a_setting_of_the_alert_service() -> None:
    names = [e["name"] for e in _container()["env"] if "value" in e]
    assert names
    unknown = [
        n for n in names if not _is_setting(Settings, n.removeprefix("FINLAKE_").split("__"))
    ]
    # Settings ignore unknown variables, so a misspelt one would silently do nothing.
    assert not unknown


def test_settings_read_from_the_deployment_match_its_ports_mounts_and_probes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = _container()
    for key in [k for k in os.environ if k.startswith("FINLAKE_")]:
        monkeypatch.delenv(key)
    for entry in container["env"]:
        if "value" in entry:
            monkeypatch.setenv(entry["name"], entry["value"])
    settings = Settings().alerting
    (port,) = container["ports"]
    assert settings.port == port["containerPort"]
    assert settings.host == "0.0.0.0"
    assert settings.rule_paths == [Path(RULES_MOUNT) / "breakout.yaml"]
    assert settings.only_listed_rules is True
    assert settings.group_id == "finlake-alerting.markets.breakout"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Settings().home) in mounts  # the delivery log is writable
    assert container["livenessProbe"]["httpGet"]["port"] == port["name"]


def test_channel_secrets_reach_the_alert_service_under_the_names_it_reads() -> None:
    env_from_secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in _container()["env"] if "valueFrom" in e
    }
    assert env_from_secrets == {
        "FINLAKE_SECRET_ALERTS_SLACK_WEBHOOK_URL": {"name": "alerts-slack", "key": "webhook-url"},
        "FINLAKE_SECRET_SMTP_PASSWORD": {"name": "smtp", "key": "password"},
    }
    environ = {name: f"value of {name}" for name in env_from_secrets}
    for channel in RULE.channels[1:]:
        secret = channel_secret(channel, None, environ)
        assert secret is not None
        assert secret.get_secret_value() == f"value of {channel.secret_env()}"


def test_the_command_runs_the_alert_service_module() -> None:
    command = _container()["command"]
    assert command == ["python", "-m", "finlake_alerting"]
    assert importlib.util.find_spec("finlake_alerting.__main__") is not None


def test_a_service_reaches_the_silences_api_of_the_rules_pods() -> None:
    deployment = build_alerting_deployment(OWNER, RULE)
    service = build_alerting_service(OWNER)
    assert service["metadata"]["name"] == deployment["metadata"]["name"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in _container()["ports"]}
    assert service["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid


def test_editing_a_rule_does_not_restart_its_alert_service_but_new_secrets_do() -> None:
    # The service reloads its mounted rule file; a restart would lose its silences, cooldowns
    # and delivery log (kept on the pod's volume).
    def restart_hash(rule: AlertRuleSpec) -> str:
        annotations = build_alerting_deployment(OWNER, rule)["spec"]["template"]["metadata"]
        return str(annotations["annotations"][CONFIG_HASH_ANNOTATION])

    edited = RULE.model_copy(update={"cooldown": RULE.cooldown * 2})
    assert edited.wire() != RULE.wire()
    assert restart_hash(edited) == restart_hash(RULE)
    resecreted = AlertRuleSpec.model_validate(
        RULE.wire() | {"channels": [{"type": "slack", "secretRef": {"name": "other-slack"}}]}
    )
    assert restart_hash(resecreted) != restart_hash(RULE)


def test_the_platform_dashboard_key_reaches_the_service_as_its_dashboard_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment = build_alerting_deployment(OWNER, RULE, dashboard_key=("finlake-api-keys", "k"))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (entry,) = [e for e in container["env"] if e["name"].startswith("FINLAKE_ALERTING__DASH")]
    assert entry["valueFrom"] == {"secretKeyRef": {"name": "finlake-api-keys", "key": "k"}}
    for key in [k for k in os.environ if k.startswith("FINLAKE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv(entry["name"], "the-key")
    api_key = Settings().alerting.dashboard.api_key
    assert api_key is not None
    assert api_key.get_secret_value() == "the-key"
    # A new platform key restarts the service (its variables come from the pod spec).
    plain = build_alerting_deployment(OWNER, RULE)
    annotations = [d["spec"]["template"]["metadata"]["annotations"] for d in (deployment, plain)]
    assert annotations[0] != annotations[1]


def _channels(*secrets: dict[str, str]) -> AlertRuleSpec:
    return AlertRuleSpec.model_validate(
        {
            "symbols": ["AAPL"],
            "condition": {"type": "price_cross", "level": 200, "direction": "above"},
            "channels": [
                {"type": "email", "to": [f"desk{i}@example.com"], "secretRef": secret}
                for i, secret in enumerate(secrets)
            ],
        }
    )


def test_channels_sharing_a_secret_key_set_its_variable_once() -> None:
    # The API server refuses (HTTP 500) a Deployment naming a variable twice: a keyed list.
    rule = _channels({"name": "smtp"}, {"name": "smtp"})
    (container,) = build_alerting_deployment(OWNER, rule)["spec"]["template"]["spec"]["containers"]
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names))
    assert names.count("FINLAKE_SECRET_SMTP_PASSWORD") == 1


def test_two_secret_keys_claiming_one_variable_are_an_invalid_spec() -> None:
    from finlake_operator.handlers.alert_rule import plan_alert_rule
    from finlake_operator.reconcile import Degradation

    rule = _channels(
        {"name": "smtp-relay", "key": "password"}, {"name": "smtp", "key": "relay-password"}
    )
    with pytest.raises(Degradation) as raised:
        plan_alert_rule(OWNER, rule, kube=None, image="x")  # type: ignore[arg-type]  # refused first
    assert raised.value.reason == "InvalidSpec"
    assert raised.value.retry is False
    assert raised.value.message == (
        "spec.channels[1].secretRef: Secret smtp key relay-password would reach the alert service "
        "as FINLAKE_SECRET_SMTP_RELAY_PASSWORD, which spec.channels[0] already takes for Secret "
        "smtp-relay key password; rename the Secret or the key"
    )


class _SecretsHere:
    """The API server as the plan sees it: every Secret exists, applies are taken as sent."""

    def get(self, _: object) -> dict[str, Any]:
        return {"kind": "Secret"}

    def apply(self, obj: dict[str, Any], **_: object) -> dict[str, Any]:
        return obj


def test_a_dashboard_channel_without_a_query_api_key_is_degraded_not_ready() -> None:
    # The query API refuses a post without X-API-Key (401), which the alert service takes as
    # permanent: a Ready rule would dead-letter every firing meant for the dashboard.
    from finlake_operator.handlers.alert_rule import plan_alert_rule
    from finlake_operator.reconcile import Degradation

    condition = {"type": "price_cross", "level": 250, "direction": "above"}
    default = AlertRuleSpec.model_validate({"symbols": ["AAPL"], "condition": condition})
    with pytest.raises(Degradation) as raised:
        plan_alert_rule(OWNER, default, _SecretsHere(), "x")  # type: ignore[arg-type]
    assert raised.value.reason == "DashboardKeyNotConfigured"
    assert raised.value.retry is False  # a new generation or a restarted operator tries again
    assert raised.value.message.startswith("spec.channels: a dashboard channel needs a query API")
    assert "alerting.dashboard.apiKeySecret" in raised.value.message
    with pytest.raises(Degradation, match=r"^spec\.channels\[0\]: "):
        plan_alert_rule(OWNER, RULE, _SecretsHere(), "x")  # type: ignore[arg-type]
    # Either key will do: the platform's, or the channel's own secretRef.
    key = ("finlake-dashboard-key", "api-key")
    plan = plan_alert_rule(OWNER, default, _SecretsHere(), "x", dashboard_key=key)  # type: ignore[arg-type]
    assert any(c["kind"] == "Deployment" for c in plan.children)
    own = AlertRuleSpec.model_validate(
        RULE.wire() | {"channels": [{"type": "dashboard", "secretRef": {"name": "dash-key"}}]}
    )
    plan_alert_rule(OWNER, own, _SecretsHere(), "x")  # type: ignore[arg-type]
    # A rule without a dashboard channel needs no query API key.
    plan_alert_rule(OWNER, _channels({"name": "smtp"}), _SecretsHere(), "x")  # type: ignore[arg-type]
