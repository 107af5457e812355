"""Settings of the alert service: the shared finlake settings plus ``FINLAKE_ALERTING__*``.

Secrets (SMTP password, Slack webhook URL, the query API key) are read from the environment only:
either these settings (``FINLAKE_ALERTING__SMTP__PASSWORD`` ...) or, for a rule channel with a
``secretRef``, the variable ``finlake.contracts.alert_rule.secret_env_name`` names (what a
Kubernetes Secret mounted as env provides). They are kept as ``SecretStr`` and never logged.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from limits import parse
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from finlake.config import FinlakeSettings
from finlake.contracts.alert_rule import Channel
from finlake.contracts.resources import check_regex
from finlake.contracts.topics import ALERTS


def _rate_limit(value: str) -> str:
    try:
        parse(value)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a rate limit such as '10/second': {error}") from error
    return value


class ChannelSettings(BaseModel):
    """What every channel has: a timeout, a send rate limit."""

    timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one send attempt.")
    rate_limit: str = Field(
        default="10/second", description="Messages per period (`limits` syntax, e.g. 1/second)."
    )

    _check_rate = field_validator("rate_limit")(_rate_limit)


class SmtpSettings(ChannelSettings):
    """The SMTP server email goes through (STARTTLS + AUTH)."""

    host: str = Field(default="127.0.0.1", description="SMTP server host.")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP submission port.")
    username: str | None = Field(default=None, description="AUTH user; none: no AUTH.")
    password: SecretStr | None = Field(
        default=None, description="AUTH password (a rule's secretRef takes precedence)."
    )
    starttls: bool = Field(
        default=True,
        description="Upgrade to TLS before AUTH and DATA; off (a relay without TLS) only without "
        "a username: the password is never sent in plaintext.",
    )
    ca_file: Path | None = Field(
        default=None, description="CA bundle that signs the server's certificate (default: system)."
    )
    sender: str = Field(default="finlake@localhost", description="From address.")
    rate_limit: str = Field(default="30/second", description="Emails per period.")


class SlackSettings(ChannelSettings):
    """The Slack incoming webhook used when a rule's channel names no secret."""

    webhook_url: SecretStr | None = Field(default=None, description="Incoming webhook URL.")
    # Slack allows about one message per second per webhook; bursts become one grouped message.
    rate_limit: str = Field(default="1/second", description="Messages per period per webhook.")


class DashboardSettings(ChannelSettings):
    """The query API whose live feed (SSE) shows alerts on the dashboard."""

    url: str = Field(default="http://127.0.0.1:8000", description="Query API base URL.")
    api_key: SecretStr | None = Field(
        default=None,
        description="X-API-Key for the query API: a publishing key (FINLAKE_API__PUBLISHER_*).",
    )
    rate_limit: str = Field(default="50/second", description="Posts per period.")


class Route(BaseModel):
    """Extra channels for events whose severity/labels/rule/symbol match (Alertmanager-style)."""

    match: dict[str, str] = Field(
        default_factory=dict, description="Equality matchers on labels, rule, symbol, severity."
    )
    match_re: dict[str, str] = Field(
        default_factory=dict, description="Regular-expression matchers (full match)."
    )
    channels: list[Channel] = Field(min_length=1, description="Where matching events also go.")
    stop: bool = Field(default=False, description="Later routes are not evaluated after a match.")

    @field_validator("match_re")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        # Checked here: a pattern that fails on the first event would stop the service on it.
        for label, pattern in value.items():
            try:
                check_regex(pattern)
            except ValueError as error:
                raise ValueError(f"{label}: {error}") from error
        return value


class ServiceSettings(BaseModel):
    """How the alert service consumes, decides, retries and serves its API."""

    host: str = Field(default="127.0.0.1", description="Interface the HTTP API binds.")
    port: int = Field(default=8090, ge=0, le=65535, description="Port of the HTTP API.")
    rule_paths: list[Path] = Field(
        default_factory=list, description="AlertRule YAML files (the detection job reads them too)."
    )
    only_listed_rules: bool = Field(
        default=False,
        description="Deliver only events of the rules in rule_paths and skip the others (the "
        "operator runs one alerting Deployment, with its own consumer group, per AlertRule).",
    )
    topic: str = Field(default=ALERTS, description="Topic of the alert events.")
    group_id: str = Field(default="finlake-alerting", description="Kafka consumer group.")
    max_attempts: int = Field(
        default=5, ge=1, le=50, description="Send attempts per channel before dead-lettering."
    )
    backoff_initial_s: float = Field(default=0.5, gt=0, description="First retry delay.")
    backoff_max_s: float = Field(default=30.0, gt=0, description="Longest retry delay.")
    group_max: int = Field(
        default=20, ge=1, le=50, description="Most alerts of one rule sent as one message."
    )
    silence_check_s: float = Field(
        default=1.0, gt=0, description="How often silence expiry and rule files are checked."
    )
    default_cooldown_s: float = Field(
        default=300.0, ge=0, description="Cooldown of events whose rule is not loaded."
    )
    shutdown_grace_s: float = Field(
        default=10.0, ge=0, description="On SIGTERM, how long queued deliveries may finish."
    )
    worker_idle_s: float = Field(
        default=300.0, gt=0,
        description="How long a target's delivery worker (a thread) may sit idle before it ends; "
        "the target's next alert starts a new one.",
    )  # fmt: skip
    routes: list[Route] = Field(default_factory=list, description="Severity/label routes.")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")


class Settings(FinlakeSettings):
    """The finlake settings plus the alert service's own, from ``FINLAKE_*``."""

    model_config = SettingsConfigDict(
        env_prefix="FINLAKE_", env_nested_delimiter="__", env_ignore_empty=True, extra="ignore"
    )

    alerting: ServiceSettings = Field(default_factory=ServiceSettings)

    @property
    def state_db(self) -> Path:
        """The SQLite delivery log, decisions, cooldowns and silences."""
        return self.home.resolve() / "alerting" / "state.db"


@lru_cache
def get_settings() -> Settings:
    """The effective settings, built once per process."""
    return Settings()
