"""Settings shared by every deployable; env only, prefix ``FINLAKE_``, nested delimiter ``__``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TOPIC_PARTITIONS = 6
SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


class KafkaSettings(BaseModel):
    """Where the Kafka broker listens (the local one, or any Kafka in a cluster)."""

    host: str = Field(default="127.0.0.1", description="Broker listener host.")
    port: int = Field(default=9092, ge=1, le=65535, description="Broker client port.")
    controller_port: int = Field(
        default=9093, ge=1, le=65535, description="KRaft controller port (local stack only)."
    )
    bootstrap_servers: str | None = Field(
        default=None, description="Overrides host:port, e.g. an external cluster's brokers."
    )
    heap: str = Field(default="512m", description="Local broker JVM heap (-Xmx).")

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers clients connect to."""
        return self.bootstrap_servers or f"{self.host}:{self.port}"


class RegistrySettings(BaseModel):
    """The Confluent-compatible schema registry (Apicurio's ccompat API locally)."""

    host: str = Field(default="127.0.0.1", description="Registry listener host (local stack).")
    port: int = Field(default=8081, ge=1, le=65535, description="Registry HTTP port (local stack).")
    management_port: int = Field(
        default=8082, ge=1, le=65535, description="Registry health/metrics port (local stack)."
    )
    url: str | None = Field(
        default=None, description="Overrides the local URL, e.g. an external registry."
    )
    heap: str = Field(default="384m", description="Local registry JVM heap (-Xmx).")
    basic_auth_password: SecretStr | None = Field(
        default=None, description="Password for registries behind basic auth."
    )

    @property
    def ccompat_url(self) -> str:
        """Base URL of the Confluent-compatible API."""
        return self.url or f"http://{self.host}:{self.port}/apis/ccompat/v7"


class TopicSettings(BaseModel):
    """Partitions and retention of the topics the contracts declare."""

    market_data_partitions: int = Field(
        default=DEFAULT_TOPIC_PARTITIONS, ge=1, description="Partitions of `market-data`."
    )
    alerts_partitions: int = Field(default=3, ge=1, description="Partitions of `alerts`.")
    retention_ms: int = Field(
        default=SEVEN_DAYS_MS, ge=60_000, description="Retention of data topics, in ms."
    )
    dead_letter_retention_ms: int = Field(
        default=4 * SEVEN_DAYS_MS, ge=60_000, description="Retention of dead-letter topics, in ms."
    )


class StackSettings(BaseModel):
    """How the local stack finds Java and Maven, and how long it waits."""

    java_home: Path | None = Field(
        default=None, description="JDK for Kafka and Spark (17+); default: `java` on PATH."
    )
    registry_java_home: Path | None = Field(
        default=None,
        description="JDK 21+ for Apicurio Registry; default: the newest JDK under /usr/lib/jvm.",
    )
    maven: str = Field(default="mvn", description="Maven executable used to resolve artifacts.")
    maven_mirror: str | None = Field(
        default=None, description="A Maven repository URL to use instead of Maven Central."
    )
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "finlake", description="Download cache (jars, Maven)."
    )
    start_timeout_s: float = Field(default=120.0, gt=0, description="Wait for a service to answer.")
    stop_grace_s: float = Field(default=20.0, gt=0, description="SIGTERM grace before SIGKILL.")


class SparkSettings(BaseModel):
    """The local Spark session: master, parallelism, catalog name."""

    master: str = Field(default="local[2]", description="Spark master URL.")
    shuffle_partitions: int | None = Field(
        default=None, ge=1, description="spark.sql.shuffle.partitions; default: the core count."
    )
    catalog: str = Field(
        default="lake", description="Iceberg catalog name (shared with PyIceberg)."
    )
    driver_memory: str = Field(default="2g", description="spark.driver.memory.")
    ui_enabled: bool = Field(default=False, description="Start the Spark web UI.")
    log_level: str = Field(default="WARN", description="Spark's log level (ERROR, WARN, INFO).")


class FinlakeSettings(BaseSettings):
    """Everything the CLI and the local stack read, from the environment only."""

    model_config = SettingsConfigDict(
        env_prefix="FINLAKE_", env_nested_delimiter="__", env_ignore_empty=True, extra="ignore"
    )

    home: Path = Field(
        default=Path(".finlake"), description="Where every run writes: lake, logs, broker data."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    stack: StackSettings = Field(default_factory=StackSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)

    @property
    def warehouse(self) -> Path:
        """Iceberg warehouse root (local disk)."""
        return self.home.resolve() / "warehouse"

    @property
    def catalog_db(self) -> Path:
        """The SQLite file of the local Iceberg JDBC catalog."""
        return self.home.resolve() / "catalog.db"


@lru_cache
def get_settings() -> FinlakeSettings:
    """The effective settings, built once per process."""
    return FinlakeSettings()


SECRET_WORDS = ("password", "secret", "token", "api_key", "webhook")


def masked(value: Any, key: str = "") -> Any:
    """A JSON-ready copy of ``value`` with secrets replaced by ``********``."""
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, key) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value and any(word in key.lower() for word in SECRET_WORDS):
        return "********"
    return value


def effective_config(settings: FinlakeSettings) -> dict[str, Any]:
    """The settings as a nested dict, secrets masked, derived values included."""
    data = masked(settings.model_dump())
    data["kafka"]["bootstrap"] = settings.kafka.bootstrap
    data["registry"]["ccompat_url"] = settings.registry.ccompat_url
    data["warehouse"] = str(settings.warehouse)
    data["catalog_db"] = str(settings.catalog_db)
    return dict(data)
