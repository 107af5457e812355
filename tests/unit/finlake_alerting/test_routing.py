from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from finlake.contracts.alert_rule import AlertRuleSpec, Channel, ChannelType
from finlake_alerting.config import Route, ServiceSettings
from finlake_alerting.routing import DASHBOARD, Target, is_cooling_down, plan, route_targets
from finlake_alerting.silences import Matcher, Silence, SilenceCreate
from tests.unit.finlake_alerting.events import T0, alert

RULE = AlertRuleSpec.model_validate(
    {
        "symbols": ["AAPL", "MSFT"],
        "condition": {"type": "price_cross", "direction": "above", "level": 200},
        "channels": [
            {"type": "email", "to": ["b@example.com", "a@example.com"]},
            {"type": "slack", "secretRef": {"name": "slack"}},
        ],
        "cooldown": "10m",
    }
)


def _plan(event_n: int = 0, **kwargs: object) -> object:
    defaults: dict[str, object] = {
        "rule": RULE, "routes": [], "silences": [], "last_notified": None,
        "default_cooldown": timedelta(minutes=5), "now": T0,
    }  # fmt: skip
    return plan(alert(event_n), **{**defaults, **kwargs})  # type: ignore[arg-type]


def test_targets_come_from_the_rule_with_stable_keys() -> None:
    targets = route_targets(alert(), RULE, [])
    assert [t.key for t in targets] == ["email:a@example.com,b@example.com", "slack:slack"]


def test_routes_add_channels_by_severity_and_labels_and_stop() -> None:
    routes = [
        Route(match={"severity": "critical"}, channels=[{"type": "dashboard"}], stop=True),
        Route(match_re={"team": "d.*"}, channels=[{"type": "slack"}]),
    ]
    keys = [t.key for t in route_targets(alert(), RULE, routes)]
    assert keys == ["email:a@example.com,b@example.com", "slack:slack", "dashboard"]
    info = [t.key for t in route_targets(alert(severity="info"), None, routes)]
    assert info == ["slack:default"]


def test_an_unknown_rule_without_routes_still_reaches_the_dashboard() -> None:
    assert route_targets(alert(rule="gone"), None, []) == (DASHBOARD,)


def test_an_active_matching_silence_suppresses() -> None:
    silence = Silence.create(
        SilenceCreate(matchers=[Matcher(name="symbol", value="AAPL")], duration="1h"), T0
    )
    assert _plan(silences=[silence]).suppressed_by == f"silence:{silence.id}"  # type: ignore[attr-defined]
    later = T0 + timedelta(hours=2)
    assert _plan(silences=[silence], now=later).suppressed_by is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("matcher", "silenced"),
    [
        (Matcher(name="symbol", value="MSFT"), False),
        (Matcher(name="symbol", value="AA.*", is_regex=True), True),
        (Matcher(name="team", value="desk", is_equal=False), False),
        (Matcher(name="team", value="ops", is_equal=False), True),
        (Matcher(name="rule", value="aapl-breakout"), True),
        (Matcher(name="severity", value="warn.*|crit.*", is_regex=True), True),
    ],
)
def test_matchers_follow_alertmanager_semantics(matcher: Matcher, silenced: bool) -> None:
    # With a matcher that an empty label fails: one that an empty label passes is refused alone.
    on_aapl = Matcher(name="symbol", value="AA.*", is_regex=True)
    silence = Silence.create(SilenceCreate(matchers=[on_aapl, matcher], duration="1h"), T0)
    assert silence.silences({"symbol": "AAPL", "team": "desk", "rule": "aapl-breakout",
                             "severity": "critical"}, T0) is silenced  # fmt: skip


def test_cooldown_uses_the_rules_duration_around_the_last_notification() -> None:
    last = T0 + timedelta(minutes=1)
    assert is_cooling_down(last + timedelta(minutes=9), last, RULE.cooldown)
    assert not is_cooling_down(last + timedelta(minutes=10), last, RULE.cooldown)
    assert _plan(1, last_notified=alert(0).fired_at).suppressed_by == "cooldown"  # type: ignore[attr-defined]
    assert _plan(10, last_notified=alert(0).fired_at).suppressed_by is None  # type: ignore[attr-defined]


def test_a_silence_needs_an_end_and_a_valid_regex() -> None:
    with pytest.raises(ValueError, match="exactly one of ends_at or duration"):
        SilenceCreate(matchers=[Matcher(name="symbol", value="X")])
    with pytest.raises(ValueError, match="not a regular expression"):
        Matcher(name="symbol", value="(", is_regex=True)
    with pytest.raises(ValueError, match="in the past"):
        Silence.create(SilenceCreate(matchers=[Matcher(name="a", value="b")],
                                     starts_at=T0 - timedelta(hours=1),
                                     ends_at=T0 - timedelta(seconds=1)), T0)  # fmt: skip


def test_target_round_trips_its_channel() -> None:
    target = Target.of(RULE.channels[0])
    assert target.type is ChannelType.EMAIL
    assert target.channel.to == ["a@example.com", "b@example.com"]


def _target(channel: dict[str, object]) -> Target:
    return Target.of(Channel.model_validate(channel))


def test_a_key_names_the_whole_destination_secret_key_and_email_credentials_included() -> None:
    ops = _target({"type": "slack", "secretRef": {"name": "slack", "key": "ops-webhook"}})
    dev = _target({"type": "slack", "secretRef": {"name": "slack", "key": "dev-webhook"}})
    assert (ops.key, dev.key) == ("slack:slack/ops-webhook", "slack:slack/dev-webhook")
    to = ["ops@example.com"]
    smtp_a = _target({"type": "email", "to": to, "secretRef": {"name": "smtp-a"}})
    smtp_b = _target({"type": "email", "to": to, "secretRef": {"name": "smtp-b"}})
    plain = _target({"type": "email", "to": to})
    assert len({smtp_a.key, smtp_b.key, plain.key}) == 3
    named_default = _target({"type": "slack", "secretRef": {"name": "default"}})
    assert named_default.key != _target({"type": "slack"}).key


def test_keys_of_single_targets_are_those_older_versions_logged() -> None:
    assert _target({"type": "slack", "secretRef": {"name": "slack"}}).key == "slack:slack"
    assert _target({"type": "slack"}).key == "slack:default"
    assert _target({"type": "email", "to": ["b@x.io", "a@x.io"]}).key == "email:a@x.io,b@x.io"


def test_one_destination_spelled_twice_is_one_target() -> None:
    channels = [
        {"type": "slack", "secretRef": {"name": "slack"}},
        {"type": "slack", "secretRef": {"name": "slack", "key": "webhook-url"}},
        {"type": "slack", "secretRef": {"name": "slack", "key": "dev-webhook"}},
    ]
    rule = RULE.model_copy(update={"channels": [Channel.model_validate(c) for c in channels]})
    keys = [t.key for t in route_targets(alert(), rule, [])]
    assert keys == ["slack:slack", "slack:slack/dev-webhook"]


def test_a_route_regex_that_does_not_compile_is_refused_with_the_settings() -> None:
    routes = [{"match_re": {"symbol": "BRK.B|(AAPL"}, "channels": [{"type": "slack"}]}]
    with pytest.raises(ValidationError) as refused:
        ServiceSettings.model_validate({"routes": routes})
    message = str(refused.value)
    assert "routes.0.match_re" in message
    assert "symbol: 'BRK.B|(AAPL' is not a regular expression" in message
