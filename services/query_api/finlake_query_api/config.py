"""Settings of the query API: the shared finlake settings plus ``FINLAKE_API__*``."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from finlake.config import FinlakeSettings
from finlake.errors import ConfigurationError

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
PACKAGE_DIR = Path(__file__).parent


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest under which an API key is stored (keys are long random tokens)."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiSettings(BaseModel):
    """How the query API listens, authenticates, limits and caches."""

    host: str = Field(default="127.0.0.1", description="Interface `finlake api serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `finlake api serve` binds.")
    engine: Literal["duckdb", "trino"] = Field(
        default="duckdb", description="Query engine: embedded DuckDB or a Trino server."
    )
    api_key_hashes: list[str] = Field(
        default_factory=list,
        description="SHA-256 hex digests of the accepted API keys (from a Secret or the env).",
    )
    api_key_hashes_file: Path | None = Field(
        default=None, description="A mounted Secret file: one SHA-256 hex digest per line."
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Plain API keys (local use); only their digests are kept in memory.",
    )
    publisher_key_hashes: list[str] = Field(
        default_factory=list,
        description="SHA-256 hex digests of the keys that may publish alerts to the live feed "
        "(POST /v1/alerts/events: the alert services); other keys only read.",
    )
    publisher_keys_file: Path | None = Field(
        default=None,
        description="A mounted Secret file holding publishing keys in plain, one per line: the "
        "Secret the alert service takes FINLAKE_ALERTING__DASHBOARD__API_KEY from.",
    )
    publisher_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Plain publishing keys (local use); only their digests are kept in memory.",
    )
    rate_limit: str = Field(
        default="600/minute", description="Per-key request limit, `limits` syntax (e.g. 10/second)."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (empty: same origin only)."
    )
    hot_window_days: int = Field(
        default=7, ge=0, le=90, description="Gold bars this recent are served from memory."
    )
    response_cache_entries: int = Field(
        default=1024, ge=0, le=1_000_000,
        description="Market reads kept by the response cache until the next snapshot (0: off).",
    )  # fmt: skip
    refresh_interval_s: float = Field(
        default=5.0, ge=0, description="How often the lake's snapshot ids are checked."
    )
    keepalive_s: float = Field(
        default=15.0, gt=0, description="Seconds between keep-alives on the alert stream."
    )
    shutdown_timeout_s: int = Field(
        default=20,
        ge=1,
        description="On SIGTERM, how long requests still running may take before they are "
        "cancelled (alert streams end at once).",
    )
    live_feed: Literal["memory", "kafka"] = Field(
        default="memory",
        description=(
            "Where posted alerts go: this process's feed (memory, one replica) or the Kafka "
            "topic alerts.feed that every replica reads (kafka, several replicas)."
        ),
    )
    vendor_dir: Path = Field(
        default=PACKAGE_DIR / "static" / "vendor",
        description="Where scripts/vendor_assets.sh put the chart library.",
    )
    max_upload_mb: int = Field(
        default=512, ge=1, le=16384, description="Largest CSV POST /v1/transactions/uploads takes."
    )

    @field_validator("api_key_hashes", "publisher_key_hashes")
    @classmethod
    def _digests(cls, hashes: list[str]) -> list[str]:
        lowered = [digest.strip().lower() for digest in hashes]
        for digest in lowered:
            if not _SHA256_HEX.match(digest):
                raise ValueError("API key hashes must be SHA-256 hex digests (64 hex characters)")
        return lowered

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, text: str) -> str:
        # Checked here, so that a bad value is a settings error before the app is built; limits
        # imported here: it costs `finlake --help`, which loads this module, ~0.1 s.
        from limits import parse

        try:
            parse(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a rate limit such as 600/minute or 10/second"
            ) from None
        return text

    def key_digests(self) -> frozenset[str]:
        """Every accepted key's digest: configured hashes, the Secret file, hashed plain keys,
        and the publishing keys (:meth:`publisher_digests`), which read too.

        ConfigurationError when a Secret file cannot be read or has a line that is no digest.
        """
        digests = set(self.api_key_hashes)
        if self.api_key_hashes_file is not None:
            digests.update(_file_digests(self.api_key_hashes_file))
        digests.update(hash_api_key(key.get_secret_value()) for key in self.api_keys)
        return frozenset(digests) | self.publisher_digests()

    def publisher_digests(self) -> frozenset[str]:
        """The digests of the keys that may publish to the live feed.

        ConfigurationError when the publishing keys' Secret file cannot be read.
        """
        digests = set(self.publisher_key_hashes)
        if self.publisher_keys_file is not None:
            digests.update(hash_api_key(key) for key in _file_keys(self.publisher_keys_file))
        digests.update(hash_api_key(key.get_secret_value()) for key in self.publisher_keys)
        return frozenset(digests)


def _read_secret(setting: str, path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else error
        raise ConfigurationError(f"{setting}: cannot read {path}: {reason}") from error


def _file_keys(path: Path) -> list[str]:
    """The plain keys in a Secret file, one a line (surrounding whitespace and blank lines
    skipped: a Secret made with ``--from-literal`` has no final line break, one from a file has)."""
    text = _read_secret("FINLAKE_API__PUBLISHER_KEYS_FILE", path)
    return [line.strip() for line in text.splitlines() if line.strip()]


def _file_digests(path: Path) -> list[str]:
    """The digests in a Secret file, one a line (blank lines skipped)."""
    setting = "FINLAKE_API__API_KEY_HASHES_FILE"
    text = _read_secret(setting, path)
    digests = []
    for number, line in enumerate(text.splitlines(), start=1):
        for word in line.split():
            if not _SHA256_HEX.match(word.lower()):
                # Named by number, not quoted: it may be a plain key pasted by mistake.
                raise ConfigurationError(
                    f"{setting}: line {number} of {path} is not a SHA-256 hex digest "
                    "(64 hex characters)"
                )
            digests.append(word.lower())
    return digests


def is_valid_key(key: str, digests: frozenset[str]) -> bool:
    """Whether ``key`` hashes to an accepted digest (constant-time compare per digest)."""
    candidate = hash_api_key(key)
    return any(hmac.compare_digest(candidate, digest) for digest in digests)


class Settings(FinlakeSettings):
    """The finlake settings plus the API's own, from ``FINLAKE_*`` (nested with ``__``)."""

    model_config = SettingsConfigDict(
        env_prefix="FINLAKE_", env_nested_delimiter="__", env_ignore_empty=True, extra="ignore"
    )

    api: ApiSettings = Field(default_factory=ApiSettings)
