from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from finlake.contracts.alert_conditions import REQUIRED_FIELDS, ConditionType
from finlake.contracts.alert_rule import AlertRuleSpec, ChannelType, FireMode
from finlake.contracts.resources import (
    ResourceError,
    format_duration,
    load_resources,
    parse_duration,
)

RULE = """\
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {name: aapl-breakout, labels: {team: desk}}
spec:
  symbols: [AAPL, MSFT]
  condition: {type: price_cross, direction: above, level: 200}
  severity: critical
  channels:
    - {type: email, to: [ops@example.com], secretRef: {name: smtp}}
    - {type: slack, secretRef: {name: slack, key: webhook-url}}
  for: 30s
  cooldown: 1h30m
  fire: once_per_bar_close
"""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("500ms", 0.5), (12, 12),
     (0.25, 0.25)],
)  # fmt: skip
def test_durations_parse_and_print_back(text: str | int, seconds: float) -> None:
    parsed = parse_duration(text)
    assert parsed == timedelta(seconds=seconds)
    assert parse_duration(format_duration(parsed)) == parsed


@pytest.mark.parametrize("bad", ["5x", "-1s", "1.5h", "", True, -3])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("bad", "said"),
    [(0.0004, "not a whole number of milliseconds"), (1.0005, "milliseconds"),
     (float("nan"), "not a number of seconds"), (float("inf"), "not a number of seconds")],
)  # fmt: skip
def test_seconds_must_be_whole_milliseconds(bad: float, said: str) -> None:
    """0.0004 s is longer than 0s but 0 ms where a bar or window divides (it crashed detection)."""
    with pytest.raises(ValueError, match=said):
        parse_duration(bad)


def test_a_rule_file_loads_into_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE)
    [resource] = load_resources([path], kind="AlertRule")
    spec: AlertRuleSpec = resource.spec
    assert resource.name == "aapl-breakout"
    assert spec.condition.type is ConditionType.PRICE_CROSS
    assert spec.condition.threshold == 200
    assert spec.for_ == timedelta(seconds=30)
    assert spec.cooldown == timedelta(minutes=90)
    assert spec.fire is FireMode.ONCE_PER_BAR_CLOSE
    assert spec.channel_types() == [ChannelType.EMAIL, ChannelType.SLACK]
    assert spec.matches("AAPL")
    assert not spec.matches("GOOG")
    assert spec.wire()["for"] == "30s"
    assert AlertRuleSpec.model_validate(spec.wire()) == spec


def test_selector_matches_by_pattern() -> None:
    spec = AlertRuleSpec.model_validate(
        {"selector": {"pattern": "A.*"}, "condition": {"type": "gap", "percent": 2}}
    )
    assert spec.matches("AMZN")
    assert not spec.matches("MSFT")
    assert spec.channel_types() == [ChannelType.DASHBOARD]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"symbols": ["A"], "condition": {"type": "price_cross", "level": 1}}, "needs direction"),
        ({"symbols": ["A"], "condition": {"type": "gap", "direction": "above", "percent": 1}},
         "direction must be one of up, down, either"),
        ({"symbols": ["A"], "condition": {"type": "volume_surge", "ratio": 3, "window": "5m",
          "lookback": "1m"}}, "lookback must be longer than window"),
        ({"symbols": ["A"], "condition": {"type": "volume_surge", "ratio": 3, "window": "1m",
          "lookback": "12h", "baseline": "time_of_day"}}, "lookback of at least 1d"),
        ({"symbols": ["A"], "condition": {"type": "volume_surge", "ratio": 3, "window": "7m",
          "lookback": "2d", "baseline": "time_of_day"}}, "window that divides a day evenly"),
        ({"condition": {"type": "gap", "percent": 1}}, "exactly one of symbols or selector"),
        ({"symbols": ["A"], "selector": {"pattern": "A"}, "condition": {"type": "gap",
          "percent": 1}}, "exactly one of symbols or selector"),
        ({"selector": {"pattern": "("}, "condition": {"type": "gap", "percent": 1}},
         "is not a regular expression"),
        ({"selector": {"pattern": "A{4294967296}"}, "condition": {"type": "gap", "percent": 1}},
         "is not a regular expression"),
        ({"symbols": ["A", "A"], "condition": {"type": "gap", "percent": 1}}, "more than once"),
        ({"symbols": ["A"], "condition": {"type": "gap", "percent": 1},
          "channels": [{"type": "email"}]}, "email needs to"),
        ({"symbols": ["A"], "condition": {"type": "gap", "percent": 1},
          "channels": [{"type": "email", "to": ["nobody"]}]}, "not an email address"),
        ({"symbols": ["A"], "condition": {"type": "gap", "percent": 1}, "webhook": "x"},
         "Extra inputs are not permitted"),
        ({"symbols": ["A"], "condition": {"type": "return_zscore", "k": 3, "window": "1m",
          "lookback": "2m"}}, r"never fires with lookback 2m: .* at least 3 x window \(3m\)"),
        ({"symbols": ["A"], "condition": {"type": "volume_surge", "ratio": 3, "window": "5m",
          "lookback": "14m"}}, r"volume_surge never fires with lookback 14m"),
        ({"symbols": ["A"], "condition": {"type": "percent_move", "percent": 100, "window": "5m",
          "direction": "down"}}, "percent_move down by 100% never fires"),
        ({"symbols": ["A"], "condition": {"type": "gap", "percent": 150, "direction": "down"}},
         "gap down by 150% never fires"),
    ],
)  # fmt: skip
def test_invalid_specs_say_why(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertRuleSpec.model_validate(spec)


def test_every_condition_type_lists_its_required_fields() -> None:
    assert set(REQUIRED_FIELDS) == set(ConditionType)
    rules = AlertRuleSpec.model_json_schema(by_alias=True)["$defs"]["Condition"][
        "x-kubernetes-validations"
    ]
    assert any("has(self.lookback)" in rule["rule"] for rule in rules)


def test_every_problem_of_every_file_is_reported(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(RULE)
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULE.replace("level: 200", "level: -1") + "---\nkind: Nope\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed")
    with pytest.raises(ResourceError) as caught:
        load_resources([good, bad, broken, tmp_path / "missing.yaml"])
    lines = [str(p) for p in caught.value.problems]
    assert any("bad.yaml[0] AlertRule/aapl-breakout: spec.condition.level" in p for p in lines)
    assert any("bad.yaml[1]: kind: 'Nope' is not one of" in p for p in lines)
    assert any("broken.yaml: not valid YAML" in p for p in lines)
    assert any("missing.yaml: cannot read" in p for p in lines)


def test_the_same_rule_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(RULE + "---\n" + RULE)
    with pytest.raises(ResourceError, match="defined more than once"):
        load_resources([path])


@pytest.mark.parametrize(
    "condition",
    [
        # The shortest rolling lookbacks the evaluator fires with: MIN_HISTORY windows.
        {"type": "return_zscore", "k": 3, "window": "1m", "lookback": "3m"},
        {"type": "volume_surge", "ratio": 3, "window": "5m", "lookback": "15m"},
        {"type": "volume_surge", "ratio": 3, "window": "1h", "lookback": "1d",
         "baseline": "time_of_day"},
        {"type": "percent_move", "percent": 99.9, "window": "5m", "direction": "down"},
        {"type": "percent_move", "percent": 150, "window": "5m", "direction": "up"},
        {"type": "gap", "percent": 150},
    ],
)  # fmt: skip
def test_conditions_that_can_fire_are_accepted(condition: dict[str, object]) -> None:
    AlertRuleSpec.model_validate({"symbols": ["A"], "condition": condition})
