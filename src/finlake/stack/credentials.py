"""Local development credentials of the `--with trino` profile, generated once per home."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from finlake.errors import StackError

CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True)
class LocalCredentials:
    """The catalog DB password and the S3 keys of one ``$FINLAKE_HOME`` (never committed)."""

    postgres_password: str
    s3_access_key_id: str
    s3_secret_access_key: str


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def local_credentials(home: Path) -> LocalCredentials:
    """The home's credentials, generated on first use into ``$FINLAKE_HOME/stack/``."""
    path = home.resolve() / "stack" / CREDENTIALS_FILE
    if not path.exists():
        generated = LocalCredentials(
            postgres_password=secrets.token_urlsafe(18),
            s3_access_key_id="FL" + secrets.token_hex(9).upper(),
            s3_secret_access_key=secrets.token_urlsafe(30),
        )
        write_private(path, json.dumps(asdict(generated), indent=1))
        return generated
    try:
        return LocalCredentials(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as error:
        raise StackError(
            f"{path} is unreadable ({error}); delete it together with the postgres and "
            "seaweedfs data (`finlake stack reset postgres`, `... seaweedfs`) to start over"
        ) from error
