"""Silences, Alertmanager-style: matchers on an event's labels (plus rule, symbol, severity, kind)
and a time span; an event matching every matcher of an active silence is not notified."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Self

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from finlake.contracts.models import AlertEvent
from finlake.contracts.resources import Duration, check_regex


class Matcher(BaseModel):
    """One condition on one label: equal / not equal, literal or full-match regex."""

    # Unknown fields are refused, not dropped: a flag spelt another way (Alertmanager's
    # ``isEqual``, which is also taken) would otherwise turn ``!=`` into ``=``.
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, description="Label name; also rule, symbol, severity, kind.")
    value: str = Field(description="Value or regular expression.")
    is_regex: bool = Field(
        default=False, validation_alias=AliasChoices("is_regex", "isRegex"),
        description="value is a regular expression (also isRegex).",
    )  # fmt: skip
    is_equal: bool = Field(
        default=True, validation_alias=AliasChoices("is_equal", "isEqual"),
        description="False: the label must NOT match (also isEqual).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _compiles(self) -> Self:
        if self.is_regex:
            check_regex(self.value)
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher (a missing label is the empty string)."""
        actual = labels.get(self.name, "")
        hit = (
            re.fullmatch(self.value, actual) is not None if self.is_regex else actual == self.value
        )
        return hit == self.is_equal


class SilenceCreate(BaseModel):
    """A new silence: matchers, and when it starts and ends (or how long it lasts)."""

    model_config = ConfigDict(extra="forbid")
    matchers: list[Matcher] = Field(min_length=1, max_length=20)
    starts_at: AwareDatetime | None = Field(
        default=None, validation_alias=AliasChoices("starts_at", "startsAt"),
        description="Default: now (also startsAt).",
    )  # fmt: skip
    ends_at: AwareDatetime | None = Field(
        default=None, validation_alias=AliasChoices("ends_at", "endsAt"),
        description="Or give duration (also endsAt).",
    )  # fmt: skip
    duration: Duration | None = Field(default=None, description="From starts_at, e.g. 2h.")
    created_by: str = Field(
        default="api", max_length=200, validation_alias=AliasChoices("created_by", "createdBy")
    )
    comment: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        if (self.ends_at is None) == (self.duration is None):
            raise ValueError("give exactly one of ends_at or duration")
        return self

    @model_validator(mode="after")
    def _not_everything(self) -> Self:
        # As Alertmanager: a missing label is "", so matchers that all match "" (a misspelt
        # label name with !=, a .* regex) would silence every alert.
        if all(matcher.matches({}) for matcher in self.matchers):
            raise ValueError(
                "at least one matcher must not match an empty or missing label "
                "(these would silence every alert)"
            )
        return self


class SilenceState(StrEnum):
    """Where a silence is in its life."""

    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


class Silence(BaseModel):
    """A stored silence."""

    model_config = ConfigDict(frozen=True)
    id: str
    matchers: list[Matcher]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    created_by: str
    comment: str
    suppressed: int = Field(default=0, description="Events it kept from being notified.")

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def create(cls, request: SilenceCreate, now: datetime) -> Silence:
        """A silence with a fresh id from a create request."""
        try:
            starts = (request.starts_at or now).astimezone(UTC)
            ends = (request.ends_at or starts + (request.duration or timedelta(0))).astimezone(UTC)
        except OverflowError:
            raise ValueError(
                "starts_at, ends_at and starts_at + duration must fall within years 1 to 9999 "
                "in UTC"
            ) from None
        if ends <= starts:
            raise ValueError("ends_at must be after starts_at")
        if ends <= now:
            raise ValueError("ends_at is in the past")
        return cls(
            id=str(uuid.uuid4()),
            matchers=request.matchers,
            starts_at=starts,
            ends_at=ends,
            created_by=request.created_by,
            comment=request.comment,
        )

    def state(self, now: datetime) -> SilenceState:
        """Pending before starts_at, active until ends_at, then expired."""
        if now < self.starts_at:
            return SilenceState.PENDING
        return SilenceState.ACTIVE if now < self.ends_at else SilenceState.EXPIRED

    def silences(self, labels: dict[str, str], now: datetime) -> bool:
        """Whether this silence is active and every matcher matches ``labels``."""
        return self.state(now) is SilenceState.ACTIVE and all(
            m.matches(labels) for m in self.matchers
        )

    def describe(self) -> str:
        """The matchers as Alertmanager writes them: ``{symbol="AAPL", severity=~"warn.*"}``."""
        ops = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
        parts = [f'{m.name}{ops[(m.is_regex, m.is_equal)]}"{m.value}"' for m in self.matchers]
        return "{" + ", ".join(parts) + "}"


def event_labels(event: AlertEvent) -> dict[str, str]:
    """What matchers and routes see: the event's labels plus rule, symbol, severity and kind."""
    return {
        **event.labels,
        "alertname": event.rule,
        "rule": event.rule,
        "symbol": event.symbol,
        "severity": event.severity,
        "kind": event.kind,
    }
