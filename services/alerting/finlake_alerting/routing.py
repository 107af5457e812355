"""Which channels an event goes to, and whether it is suppressed (silence, cooldown): pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from finlake.contracts.alert_rule import (
    DEFAULT_SECRET_KEYS,
    AlertRuleSpec,
    Channel,
    ChannelType,
    SecretRef,
)
from finlake.contracts.models import AlertEvent
from finlake_alerting.config import Route
from finlake_alerting.silences import Silence, event_labels


@dataclass(frozen=True)
class Target:
    """One place one event is delivered to; ``key`` names it in the delivery log."""

    type: ChannelType
    to: tuple[str, ...] = ()
    secret_ref: SecretRef | None = None

    @property
    def key(self) -> str:
        """Names the destination fully: two targets share a key only if they are one place.

        ``dashboard``; ``email:a@x,b@y``, plus `` <secret>/<key>`` when a secretRef gives the
        SMTP credentials; ``slack:default`` (the settings' webhook), ``slack:<secret>`` (the
        Secret's default key, the form older versions wrote) or ``slack:<secret>/<key>``.
        """
        if self.type is ChannelType.EMAIL:
            recipients = "email:" + ",".join(self.to)
            return recipients + (f" {self._secret()}" if self.secret_ref else "")
        if self.type is ChannelType.SLACK:
            return "slack:" + self._slack_webhook()
        return self.type.value

    @property
    def legacy_key(self) -> str:
        """The key older versions logged deliveries under: it ignored the Secret's key and the
        email secret, so two destinations could share it."""
        if self.type is ChannelType.EMAIL:
            return "email:" + ",".join(self.to)
        if self.type is ChannelType.SLACK:
            return "slack:" + (self.secret_ref.name if self.secret_ref else "default")
        return self.type.value

    def _secret(self) -> str:
        assert self.secret_ref is not None
        return f"{self.secret_ref.name}/{self.channel.secret_key()}"

    def _slack_webhook(self) -> str:
        if self.secret_ref is None:
            return "default"
        # The Secret's default key keeps the short form, so rows logged before the key counted
        # still match; a Secret named "default" must not read as the settings' webhook.
        is_default_key = self.channel.secret_key() == DEFAULT_SECRET_KEYS[ChannelType.SLACK]
        if is_default_key and self.secret_ref.name != "default":
            return self.secret_ref.name
        return self._secret()

    @property
    def channel(self) -> Channel:
        """The rule channel this target was made from."""
        return Channel(type=self.type, to=list(self.to), secret_ref=self.secret_ref)

    @classmethod
    def of(cls, channel: Channel) -> Target:
        """The target of a rule's channel (recipients sorted, so the key is stable)."""
        return cls(channel.type, tuple(sorted(set(channel.to))), channel.secret_ref)


DASHBOARD = Target(ChannelType.DASHBOARD)


@dataclass(frozen=True)
class Plan:
    """What to do with one event: deliver to ``targets``, or not, because of ``suppressed_by``."""

    targets: tuple[Target, ...]
    suppressed_by: str | None = None

    @property
    def notifies(self) -> bool:
        """Whether the event is delivered anywhere."""
        return self.suppressed_by is None and bool(self.targets)


def _route_matches(route: Route, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in route.match.items()) and all(
        re.fullmatch(v, labels.get(k, "")) is not None for k, v in route.match_re.items()
    )


def route_targets(
    event: AlertEvent, rule: AlertRuleSpec | None, routes: Sequence[Route]
) -> tuple[Target, ...]:
    """The rule's channels plus those of every matching route; the dashboard if none at all."""
    channels: list[Channel] = list(rule.channels) if rule is not None else []
    labels = event_labels(event)
    for route in routes:
        if _route_matches(route, labels):
            channels.extend(route.channels)
            if route.stop:
                break
    # One target per destination: the same place spelled twice is delivered once.
    targets: dict[str, Target] = {}
    for channel in channels:
        target = Target.of(channel)
        targets.setdefault(target.key, target)
    # Nothing configured for it (an unknown rule, no route): still shown, never dropped.
    return tuple(targets.values()) or (DASHBOARD,)


def is_cooling_down(
    fired_at: datetime, last_notified: datetime | None, cooldown: timedelta
) -> bool:
    """Whether a firing at ``fired_at`` falls within ``cooldown`` of the last notified one."""
    return last_notified is not None and abs(fired_at - last_notified) < cooldown


def plan(
    event: AlertEvent,
    *,
    rule: AlertRuleSpec | None,
    routes: Sequence[Route],
    silences: Iterable[Silence],
    last_notified: datetime | None,
    default_cooldown: timedelta,
    now: datetime,
) -> Plan:
    """Route the event, then apply silences (checked at ``now``) and the (rule, symbol) cooldown."""
    targets = route_targets(event, rule, routes)
    labels = event_labels(event)
    for silence in silences:
        if silence.silences(labels, now):
            return Plan(targets, suppressed_by=f"silence:{silence.id}")
    cooldown = rule.cooldown if rule is not None else default_cooldown
    if is_cooling_down(event.fired_at, last_notified, cooldown):
        return Plan(targets, suppressed_by="cooldown")
    return Plan(targets)
