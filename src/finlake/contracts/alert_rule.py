"""The AlertRule spec: what the detection job evaluates and how the alert service routes a firing.

The same model is the ``spec`` of the AlertRule custom resource (the operator's CRD is generated
from it) and of the YAML files ``finlake alerts validate`` checks and the local runner loads.

Conditions (``condition.type``), evaluated per symbol on event time:

- ``price_cross``: the price crosses ``level`` (``direction`` above: from below to at-or-above;
  below: from above to at-or-below).
- ``percent_move``: the price moved at least ``percent`` % over ``window`` (``direction`` up, down
  or either), last price against the first price of the window.
- ``return_zscore``: the return over one ``window`` is more than ``k`` standard deviations from
  the mean of the returns of the windows in the previous ``lookback`` (at least ``MIN_HISTORY``
  of them, so lookback >= 3 x window).
- ``volume_surge``: the volume of one ``window`` is at least ``ratio`` times the average volume of
  the windows in ``lookback`` (``baseline`` rolling: lookback >= 3 x window, as for z-scores), or
  of the same time of day on previous days (``baseline`` time_of_day).
- ``gap``: the first price of a trading day is at least ``percent`` % away from the previous
  day's last price (``direction`` up, down or either).
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Any, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from finlake.contracts.resources import Duration, SpecModel, format_duration, register_kind
from finlake.contracts.storage import PersistenceSpec

KIND = "AlertRule"
SYMBOL_PATTERN = r"^[A-Za-z0-9.^=_-]{1,20}$"
MIN_HISTORY = 3
"""Earlier windows a rolling baseline (return_zscore, volume_surge rolling) needs before it is
trusted: the evaluator never fires with fewer, so lookback must span at least this many windows."""


class ConditionType(StrEnum):
    """What a rule watches for; the ``kind`` of the alert events it emits."""

    PRICE_CROSS = "price_cross"
    PERCENT_MOVE = "percent_move"
    RETURN_ZSCORE = "return_zscore"
    VOLUME_SURGE = "volume_surge"
    GAP = "gap"


class Direction(StrEnum):
    """Which way the price must go."""

    ABOVE = "above"
    BELOW = "below"
    UP = "up"
    DOWN = "down"
    EITHER = "either"


class Baseline(StrEnum):
    """What a volume surge is measured against."""

    ROLLING = "rolling"
    TIME_OF_DAY = "time_of_day"


class Severity(StrEnum):
    """How urgent a firing is; routes and email subjects use it."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class FireMode(StrEnum):
    """How often a rule may fire for one symbol."""

    ONCE = "once"
    """At most one event per symbol for the rule's lifetime."""
    ONCE_PER_BAR = "once_per_bar"
    """At most one event per symbol and bar, as soon as the condition holds inside the bar."""
    ONCE_PER_BAR_CLOSE = "once_per_bar_close"
    """At most one event per symbol and bar, when the bar closes with the condition holding."""


class ChannelType(StrEnum):
    """Where a firing is delivered."""

    DASHBOARD = "dashboard"
    EMAIL = "email"
    SLACK = "slack"


# The key read from a channel's Secret when its secretRef names none.
DEFAULT_SECRET_KEYS: dict[ChannelType, str] = {
    ChannelType.EMAIL: "password",
    ChannelType.SLACK: "webhook-url",
    ChannelType.DASHBOARD: "api-key",
}


# Which fields each condition needs, and which directions it accepts: the model validator and the
# CRD's CEL rules are both generated from these two tables.
REQUIRED_FIELDS: dict[ConditionType, tuple[str, ...]] = {
    ConditionType.PRICE_CROSS: ("level", "direction"),
    ConditionType.PERCENT_MOVE: ("percent", "window"),
    ConditionType.RETURN_ZSCORE: ("k", "window", "lookback"),
    ConditionType.VOLUME_SURGE: ("ratio", "window", "lookback"),
    ConditionType.GAP: ("percent",),
}
DIRECTIONS: dict[ConditionType, tuple[Direction, ...]] = {
    ConditionType.PRICE_CROSS: (Direction.ABOVE, Direction.BELOW),
    ConditionType.PERCENT_MOVE: (Direction.UP, Direction.DOWN, Direction.EITHER),
    ConditionType.GAP: (Direction.UP, Direction.DOWN, Direction.EITHER),
}


def _condition_cel() -> list[Any]:
    rules = []
    for kind, fields in REQUIRED_FIELDS.items():
        present = " && ".join(f"has(self.{field})" for field in fields)
        rules.append(
            {
                "rule": f"self.type != '{kind.value}' || ({present})",
                "message": f"{kind.value} needs {', '.join(fields)}",
            }
        )
    for kind, allowed in DIRECTIONS.items():
        values = ", ".join(f"'{d.value}'" for d in allowed)
        rules.append(
            {
                "rule": f"self.type != '{kind.value}' || !has(self.direction) "
                f"|| self.direction in [{values}]",
                "message": f"{kind.value} direction must be one of {', '.join(d for d in allowed)}",
            }
        )
    # lookback > window cannot be written in CEL (its duration() has no "d" unit): the model
    # validator refuses it, and the operator reports it as Degraded.
    return rules


class Condition(SpecModel):
    """What must be true for the rule to fire; which fields apply depends on ``type``."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _condition_cel()})
    type: ConditionType = Field(description="The pattern to detect.")
    direction: Direction | None = Field(
        default=None,
        description="price_cross: above or below; percent_move and gap: up, down or either "
        "(default either).",
    )
    level: float | None = Field(default=None, gt=0, description="price_cross: the price level.")
    percent: float | None = Field(
        default=None, gt=0, le=1000, description="percent_move and gap: the move, in percent."
    )
    window: Duration | None = Field(
        default=None, description="percent_move: the move's span; return_zscore and volume_surge: "
        "the bucket a return or a volume is measured over.",
    )  # fmt: skip
    lookback: Duration | None = Field(
        default=None,
        description="return_zscore and volume_surge: the rolling history the current bucket is "
        "compared with.",
    )
    k: float | None = Field(
        default=None, gt=0, le=100, description="return_zscore: standard deviations."
    )
    ratio: float | None = Field(
        default=None, gt=1, le=1000, description="volume_surge: times the baseline volume."
    )
    baseline: Baseline = Field(
        default=Baseline.ROLLING, description="volume_surge: rolling or time_of_day."
    )

    @model_validator(mode="after")
    def _fields_for_type(self) -> Self:
        missing = [f for f in REQUIRED_FIELDS[self.type] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{self.type.value} needs {', '.join(missing)}")
        allowed = DIRECTIONS.get(self.type)
        if self.direction is not None and allowed is not None and self.direction not in allowed:
            names = ", ".join(d.value for d in allowed)
            raise ValueError(f"{self.type.value} direction must be one of {names}")
        if self.direction is not None and allowed is None:
            raise ValueError(f"{self.type.value} takes no direction")
        if self.window is not None and self.window <= timedelta(0):
            raise ValueError("window must be longer than 0s")
        if self.window is not None and self.lookback is not None and self.lookback <= self.window:
            raise ValueError("lookback must be longer than window")
        self._check_rolling_history()
        self._check_reachable_move()
        if self.type is ConditionType.VOLUME_SURGE and self.baseline is Baseline.TIME_OF_DAY:
            # The baseline is the same bar on earlier days: bars must line up from day to day,
            # and the lookback must reach at least one day back, or the rule never fires.
            if self.window is not None and timedelta(days=1) % self.window:
                raise ValueError("baseline time_of_day needs a window that divides a day evenly")
            if self.lookback is not None and self.lookback < timedelta(days=1):
                raise ValueError("baseline time_of_day needs a lookback of at least 1d")
        return self

    def _check_rolling_history(self) -> None:
        rolling = self.type is ConditionType.RETURN_ZSCORE or (
            self.type is ConditionType.VOLUME_SURGE and self.baseline is Baseline.ROLLING
        )
        if not rolling or self.window is None or self.lookback is None:
            return
        # The baseline is the windows starting within lookback before the current one: there
        # are lookback // window of them, and the evaluator needs MIN_HISTORY.
        if self.lookback < MIN_HISTORY * self.window:
            raise ValueError(
                f"{self.type.value} never fires with lookback {format_duration(self.lookback)}: "
                f"it compares the current window with at least {MIN_HISTORY} earlier ones, so "
                f"lookback must be at least {MIN_HISTORY} x window "
                f"({format_duration(MIN_HISTORY * self.window)})"
            )

    def _check_reachable_move(self) -> None:
        # A price stays above 0, so it can fall by less than 100 %.
        if self.direction is Direction.DOWN and self.percent is not None and self.percent >= 100:
            raise ValueError(
                f"{self.type.value} down by {self.percent:g}% never fires: a price cannot fall "
                "100% or more (use a percent below 100)"
            )

    @property
    def effective_direction(self) -> Direction:
        """The direction, with percent_move and gap defaulting to either."""
        return self.direction or Direction.EITHER

    @property
    def threshold(self) -> float:
        """The number a firing's value is compared with, in the condition's unit."""
        value = {
            ConditionType.PRICE_CROSS: self.level,
            ConditionType.PERCENT_MOVE: self.percent,
            ConditionType.RETURN_ZSCORE: self.k,
            ConditionType.VOLUME_SURGE: self.ratio,
            ConditionType.GAP: self.percent,
        }[self.type]
        assert value is not None  # guaranteed by the validator
        return value


class SymbolSelector(SpecModel):
    """Symbols chosen by a regular expression instead of a list."""

    pattern: str = Field(
        min_length=1, max_length=200, description="Regular expression a symbol must fully match."
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {error}") from error
        return value


def secret_env_name(secret: str, key: str) -> str:
    """The variable a Secret's key is mounted as: ``FINLAKE_SECRET_<NAME>_<KEY>``, upper case.

    The operator sets it on the alerting Deployment (``secretKeyRef``); the alert service reads it.
    """
    return "FINLAKE_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", f"{secret}_{key}").upper()


class SecretRef(SpecModel):
    """A Kubernetes Secret (locally: environment variables) holding a channel's credentials."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    key: str | None = Field(default=None, description="Key in the Secret; the channel's default.")


class Channel(SpecModel):
    """One delivery target of a rule's firings."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.type != 'email' || (has(self.to) && size(self.to) > 0)",
                    "message": "email needs to",
                }
            ]
        }
    )
    type: ChannelType
    to: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="email: recipient addresses.",
        json_schema_extra={"items": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$"}},
    )
    secret_ref: SecretRef | None = Field(
        default=None,
        description="Credentials (SMTP password, Slack webhook URL, the query API key of the "
        "dashboard); never written in the spec.",
    )

    def secret_key(self) -> str | None:
        """The key read from the channel's Secret: the one named, else the type's default."""
        if self.secret_ref is None:
            return None
        return self.secret_ref.key or DEFAULT_SECRET_KEYS.get(self.type, "value")

    def secret_env(self) -> str | None:
        """The variable the channel's Secret key reaches the alert service as, if any."""
        key = self.secret_key()
        if self.secret_ref is None or key is None:
            return None
        return secret_env_name(self.secret_ref.name, key)

    @model_validator(mode="after")
    def _recipients(self) -> Self:
        if self.type is ChannelType.EMAIL and not self.to:
            raise ValueError("email needs to (one or more recipient addresses)")
        if self.type is not ChannelType.EMAIL and self.to:
            raise ValueError(f"{self.type.value} takes no to")
        for address in self.to:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                raise ValueError(f"{address!r} is not an email address")
        return self


class AlertRuleSpec(SpecModel):
    """One alert rule: which symbols, what condition, how often, and where to send it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.symbols) != has(self.selector)",
                    "message": "exactly one of symbols or selector",
                }
            ]
        }
    )
    symbols: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="The symbols the rule watches.",
        json_schema_extra={"items": {"type": "string", "pattern": SYMBOL_PATTERN}},
    )
    selector: SymbolSelector | None = Field(
        default=None, description="Or: every symbol matching a pattern."
    )
    condition: Condition
    severity: Severity = Severity.WARNING
    channels: list[Channel] = Field(
        default_factory=lambda: [Channel(type=ChannelType.DASHBOARD)],
        min_length=1,
        max_length=10,
        description="Where firings go (default: the dashboard).",
    )
    for_: Duration = Field(
        default=timedelta(0),
        alias="for",
        description="The condition must hold this long before the rule fires.",
    )
    cooldown: Duration = Field(
        default=timedelta(minutes=5),
        description="After a notification, further firings of the rule for the same symbol are "
        "not notified for this long.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Added to every event; routing and grouping use them."
    )
    fire: FireMode = Field(default=FireMode.ONCE_PER_BAR, description="How often it may fire.")
    bar: Duration = Field(
        default=timedelta(minutes=1), description="The bar once_per_bar modes count in."
    )
    persistence: PersistenceSpec | None = Field(
        default=None,
        description="A PersistentVolumeClaim for the rule's alert service state (delivery log, "
        "cooldowns, silences); default: the pod's own disk, which a rescheduled pod starts "
        "without (silences lost, in-doubt deliveries sent again).",
    )

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for symbol in value:
            if not re.fullmatch(SYMBOL_PATTERN, symbol):
                raise ValueError(f"{symbol!r} is not a ticker symbol")
        if len(set(value)) != len(value):
            raise ValueError("symbols are listed more than once")
        return value

    @field_validator("bar")
    @classmethod
    def _bar(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("bar must be longer than 0s")
        return value

    @model_validator(mode="after")
    def _one_way_to_pick_symbols(self) -> Self:
        if (self.symbols is None) == (self.selector is None):
            raise ValueError("give exactly one of symbols or selector")
        return self

    def matches(self, symbol: str) -> bool:
        """Whether the rule watches ``symbol``."""
        if self.symbols is not None:
            return symbol in self.symbols
        assert self.selector is not None
        return re.fullmatch(self.selector.pattern, symbol) is not None

    def channel_types(self) -> list[ChannelType]:
        """The channel types in order, each once."""
        return list(dict.fromkeys(channel.type for channel in self.channels))

    def wire(self) -> dict[str, Any]:
        """The spec as it is written in YAML (camelCase, durations as strings, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


register_kind(KIND, AlertRuleSpec)
