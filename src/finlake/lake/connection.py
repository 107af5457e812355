"""Where the lake lives: the Iceberg JDBC catalog and warehouse every engine shares.

By default that is a SQLite file and a folder under ``$FINLAKE_HOME``. ``finlake stack up --with
trino`` records a profile in ``$FINLAKE_HOME/profile.json``; while it is there, Spark, PyIceberg and
Trino all use the profile's PostgreSQL catalog and S3 warehouse. ``FINLAKE_LAKE__*`` settings
override both (a cluster's catalog and bucket).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from finlake.config import FinlakeSettings
from finlake.errors import ConfigurationError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

PROFILE_FILE = "profile.json"
TRINO_PROFILE = "trino"
# New AWS SDKs send aws-chunked checksum trailers that S3 emulators may reject (research §7).
S3_CHECKSUM_ENV = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "WHEN_REQUIRED",
}


S3_SCHEMES = ("s3://", "s3a://")


@dataclass(frozen=True)
class S3Access:
    """An S3 endpoint and the keys to sign requests with; no keys: the AWS SDK's default
    credentials (a pod's IAM role or web identity, the instance profile, AWS_* variables)."""

    endpoint: str | None
    access_key_id: str | None
    secret_access_key: str | None
    region: str

    def key_properties(self, access_key: str, secret_key: str) -> dict[str, str]:
        """The static keys under the given property names (none without keys)."""
        if self.access_key_id is None or self.secret_access_key is None:
            return {}
        return {access_key: self.access_key_id, secret_key: self.secret_access_key}


@dataclass(frozen=True)
class LakeConnection:
    """The resolved catalog DB and warehouse (secrets included: never log this)."""

    jdbc_url: str
    warehouse: str
    user: str | None = None
    password: str | None = None
    s3: S3Access | None = None

    @property
    def is_local(self) -> bool:
        """Whether this is the default SQLite catalog with a warehouse on local disk."""
        return self.jdbc_url.startswith("jdbc:sqlite:")

    def sqlalchemy_url(self) -> str:
        """The same database as a SQLAlchemy URL (PyIceberg's SqlCatalog)."""
        if self.is_local:
            return f"sqlite:///{self.jdbc_url.removeprefix('jdbc:sqlite:')}"
        if not self.jdbc_url.startswith("jdbc:postgresql://"):
            raise ConfigurationError(
                f"catalog URL {self.jdbc_url!r} is neither jdbc:sqlite: nor jdbc:postgresql://"
            )
        parts = urlsplit(self.jdbc_url.removeprefix("jdbc:"))
        login = quote(self.user or "", safe="")
        if self.password:
            login += ":" + quote(self.password, safe="")
        return f"postgresql+psycopg2://{login}@{parts.netloc}{parts.path}"

    def pyiceberg_properties(self) -> dict[str, str]:
        """Properties of PyIceberg's SqlCatalog for this lake."""
        properties = {"uri": self.sqlalchemy_url(), "warehouse": self.warehouse}
        if self.s3 is not None:
            properties |= {
                **self.s3.key_properties("s3.access-key-id", "s3.secret-access-key"),
                "s3.region": self.s3.region,
            }
            if self.s3.endpoint:
                properties |= {
                    "s3.endpoint": self.s3.endpoint,
                    "s3.force-virtual-addressing": "false",
                }
        return properties


def local_connection(settings: FinlakeSettings) -> LakeConnection:
    """The default lake: a SQLite catalog file and a warehouse folder under home."""
    return LakeConnection(
        jdbc_url=f"jdbc:sqlite:{settings.catalog_db}", warehouse=settings.warehouse.as_uri()
    )


def lake_connection(settings: FinlakeSettings) -> LakeConnection:
    """The lake in effect: ``FINLAKE_LAKE__*`` if set, else the recorded profile, else local."""
    lake = settings.lake
    if lake.catalog_url is not None:
        s3 = None
        if lake.s3_access_key_id and lake.s3_secret_access_key:
            s3 = S3Access(
                lake.s3_endpoint,
                lake.s3_access_key_id,
                lake.s3_secret_access_key.get_secret_value(),
                lake.s3_region,
            )
        elif lake.warehouse is not None and lake.warehouse.startswith(S3_SCHEMES):
            # No keys: the SDK's own credentials (e.g. the pod's IAM role), still S3FileIO.
            s3 = S3Access(lake.s3_endpoint, None, None, lake.s3_region)
        if lake.warehouse is None:
            raise ConfigurationError(
                "FINLAKE_LAKE__CATALOG_URL is set but FINLAKE_LAKE__WAREHOUSE is not; set both"
            )
        password = lake.catalog_password.get_secret_value() if lake.catalog_password else None
        return LakeConnection(lake.catalog_url, lake.warehouse, lake.catalog_user, password, s3)
    recorded = read_profile(settings.home)
    if recorded is not None:
        return recorded[1]
    return local_connection(settings)


def read_profile(home: Path) -> tuple[str, LakeConnection] | None:
    """The recorded stack profile and its lake, or None when the default profile is in effect."""
    path = home.resolve() / PROFILE_FILE
    try:
        data = json.loads(path.read_text())
        s3 = data["lake"].pop("s3", None)
        connection = LakeConnection(**data["lake"], s3=S3Access(**s3) if s3 else None)
        return str(data["profile"]), connection
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigurationError(
            f"{path} is unreadable ({error}); run `finlake stack up --with trino` again "
            "or `finlake stack down --forget-profile`"
        ) from error


def write_profile(home: Path, profile: str, connection: LakeConnection) -> Path:
    """Record ``profile`` and its lake for later commands (owner-only: it holds local secrets)."""
    path = home.resolve() / PROFILE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"profile": profile, "lake": asdict(connection)}, indent=1)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return path


def forget_profile(home: Path) -> bool:
    """Go back to the default profile; True if one was recorded."""
    path = home.resolve() / PROFILE_FILE
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def open_catalog(settings: FinlakeSettings) -> Catalog:
    """PyIceberg's view of the lake's catalog (same name as Spark's, same DB, same warehouse)."""
    from pyiceberg.catalog.sql import SqlCatalog

    connection = lake_connection(settings)
    if connection.s3 is not None:
        for key, value in S3_CHECKSUM_ENV.items():
            os.environ.setdefault(key, value)
    return SqlCatalog(settings.spark.catalog, **connection.pyiceberg_properties())
