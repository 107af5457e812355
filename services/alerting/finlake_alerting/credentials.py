"""Channel secrets from the environment only, and a redactor that keeps them out of logs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from pydantic import SecretStr

from finlake.contracts.alert_rule import Channel


class MissingSecretError(LookupError):
    """A channel needs a secret that neither its secretRef variable nor the settings provide."""


def channel_secret(
    channel: Channel, fallback: SecretStr | None, environ: Mapping[str, str] | None = None
) -> SecretStr | None:
    """The channel's secret: its secretRef's variable when set, else ``fallback``."""
    environ = os.environ if environ is None else environ
    name = channel.secret_env()
    if name is not None:
        value = environ.get(name)
        if not value:
            raise MissingSecretError(f"{channel.type.value} channel: ${name} is not set")
        return SecretStr(value)
    return fallback


class Redactor:
    """Replaces every known secret value in a text with ``********``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *values: str) -> None:
        """Remember more secret values (empty or very short ones are ignored)."""
        self._values.update(v for v in values if v and len(v) >= 4)
        ordered = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        """``text`` with secrets masked."""
        return self._pattern.sub("********", text) if self._pattern else text
