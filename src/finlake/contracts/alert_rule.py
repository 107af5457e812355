"""The AlertRule spec: what the detection job evaluates and how the alert service routes a firing.

The same model is the ``spec`` of the AlertRule custom resource (the operator's CRD is generated
from it) and of the YAML files ``finlake alerts validate`` checks and the local runner loads.

Conditions (``condition.type``; see ``alert_conditions``), evaluated per symbol on event time:

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

from finlake.contracts.alert_conditions import Condition
from finlake.contracts.resources import Duration, SpecModel, check_regex, register_kind
from finlake.contracts.storage import PersistenceSpec

KIND = "AlertRule"
SYMBOL_PATTERN = r"^[A-Za-z0-9.^=_-]{1,20}$"


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


class SymbolSelector(SpecModel):
    """Symbols chosen by a regular expression instead of a list."""

    pattern: str = Field(
        min_length=1, max_length=200, description="Regular expression a symbol must fully match."
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return check_regex(value)


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
