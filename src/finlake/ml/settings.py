"""Where the feature store and the model registry live; env prefix ``FINLAKE_ML__``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL


class OnlineStoreKind(StrEnum):
    """Feast online store types finlake configures."""

    SQLITE = "sqlite"
    REDIS = "redis"
    POSTGRES = "postgres"


class FeatureRegistryKind(StrEnum):
    """Where Feast keeps its registry (the feature definitions)."""

    FILE = "file"
    POSTGRES = "postgres"


REGISTRY_CACHE_S = 60
"""How long a process trusts the feature definitions it read from the PostgreSQL registry."""


class MlSettings(BaseSettings):
    """Feature store, tracking server and model names; defaults live under ``$FINLAKE_HOME``."""

    model_config = SettingsConfigDict(
        env_prefix="FINLAKE_ML__", env_nested_delimiter="__", env_ignore_empty=True, extra="ignore"
    )

    online_store: OnlineStoreKind = Field(
        default=OnlineStoreKind.SQLITE,
        description="Feast online store: sqlite (local file under home), redis or postgres.",
    )
    feature_registry: FeatureRegistryKind = Field(
        default=FeatureRegistryKind.FILE,
        description=(
            "Feast registry: file (under home, one process's) or postgres (the postgres_* "
            "database, shared by every pod that materializes or scores)."
        ),
    )
    refresh_after_batch: bool = Field(
        default=True,
        description=(
            "Refresh the features after each transactions batch run that added validated rows "
            "(the whole of transactions.validated is read into the process that runs it)."
        ),
    )
    redis_connection: str = Field(
        default="127.0.0.1:6379", description="Redis connection string (host:port[,ssl=true])."
    )
    postgres_host: str = Field(default="127.0.0.1", description="Online store PostgreSQL host.")
    postgres_port: int = Field(default=5432, ge=1, le=65535, description="Its port.")
    postgres_database: str = Field(default="features", description="Its database.")
    postgres_user: str = Field(default="finlake", description="Its user.")
    postgres_password: SecretStr | None = Field(default=None, description="Its password.")
    postgres_sslmode: str = Field(
        default="require",
        description="libpq sslmode of its connections (require, verify-full; disable on loopback).",
    )
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking + registry URI; default: SQLite under home/mlflow.",
    )
    model_name: str = Field(default="finlake-fraud", description="Registered model name.")
    champion_alias: str = Field(default="champion", description="Alias of the serving model.")
    alias_check_s: float = Field(
        default=5.0, ge=0, description="How long the API trusts its cached champion version."
    )
    threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Score at or above which a prediction is fraud."
    )

    def registry_config(self, home: Path) -> str | dict[str, Any]:
        """The ``registry`` of Feast's repo config: a file under ``home`` or the SQL registry."""
        if self.feature_registry is FeatureRegistryKind.FILE:
            return str(home / "registry.db")
        url = URL.create(
            "postgresql+psycopg",
            username=self.postgres_user,
            password=self.postgres_password.get_secret_value() if self.postgres_password else None,
            host=self.postgres_host,
            port=self.postgres_port,
            database=self.postgres_database,
            query={"sslmode": self.postgres_sslmode},
        )
        return {
            "registry_type": "sql",
            "path": url.render_as_string(hide_password=False),
            "cache_ttl_seconds": REGISTRY_CACHE_S,
            "sqlalchemy_config_kwargs": {"echo": False, "pool_pre_ping": True},
        }

    def online_store_config(self, home: Path) -> dict[str, Any]:
        """The ``online_store`` section of Feast's repo config."""
        if self.online_store is OnlineStoreKind.REDIS:
            return {"type": "redis", "connection_string": self.redis_connection}
        if self.online_store is OnlineStoreKind.POSTGRES:
            password = self.postgres_password.get_secret_value() if self.postgres_password else ""
            return {
                "type": "postgres",
                "host": self.postgres_host,
                "port": self.postgres_port,
                "database": self.postgres_database,
                "user": self.postgres_user,
                "password": password,
                "sslmode": self.postgres_sslmode,
            }
        return {"type": "sqlite", "path": str(home / "online.db")}

    def mlflow_uri(self, home: Path) -> str:
        """The tracking (and registry) URI."""
        return self.tracking_uri or f"sqlite:///{home / 'mlflow.db'}"
