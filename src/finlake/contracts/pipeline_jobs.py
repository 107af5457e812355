"""How a MedallionPipeline's Spark jobs run: their schedules, alert detection, table
maintenance, the Spark image and pod sizes (parts of ``medallion_pipeline``'s spec)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import Field

from finlake.contracts.market_feed import IMAGE, K8S_NAME, KAFKA_TOPIC
from finlake.contracts.resources import QUANTITY, Duration, SpecModel
from finlake.contracts.topics import ALERTS

# Five cron fields; each a list of numbers, ranges, steps or '*'.
CRON = r"^(\S+\s+){4}\S+$"
TIME_ZONE = r"^(UTC|[A-Za-z]+(/[A-Za-z0-9_+-]+){1,2})$"
SPARK_VERSION = r"^4\.1\.[0-9]+$"
DEFAULT_SPARK_IMAGE = "ghcr.io/finlake/finlake-spark:0.1.0"
DEFAULT_MAIN_FILE = "local:///opt/finlake/finlake_spark/main.py"


class ConcurrencyPolicy(StrEnum):
    """What a scheduled run does when the previous one is still running."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class BatchSpec(SpecModel):
    """The hourly batch: cron schedule in an explicit time zone."""

    schedule: str = Field(
        default="5 * * * *", pattern=CRON, max_length=100, description="Cron (5 fields)."
    )
    time_zone: str = Field(
        default="UTC", pattern=TIME_ZONE, max_length=64, description="IANA time zone."
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.FORBID, description="Allow, Forbid or Replace."
    )
    suspend: bool = Field(default=False, description="Stop scheduling new runs.")


class DetectionSpec(SpecModel):
    """Alert detection on the market stream: the namespace's AlertRules evaluated per symbol on
    sourceTopic, firings published to alertsTopic and stored in alerts.events."""

    enabled: bool = Field(
        default=True,
        description="Run the alert detection job. Switching it off deletes the job and its "
        "checkpoints claim (spec.persistence): switched on again, detection starts afresh from "
        "startingOffsets.",
    )
    alerts_topic: str = Field(
        default=ALERTS, pattern=KAFKA_TOPIC, description="Topic the alert events go to."
    )
    state_partitions: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Tasks of the per-symbol stateful step per micro-batch (fixed by the "
        "checkpoint once it exists).",
    )
    starting_offsets: Literal["latest", "earliest"] = Field(
        default="latest",
        description="Where detection reads from when it has no checkpoint (its first start, or "
        "its driver's disk was lost): latest evaluates ticks from then on; earliest evaluates "
        "the whole retained topic, firing for past patterns too (event ids are deterministic, "
        "so the alert service sends none twice).",
    )


class MaintenanceSpec(SpecModel):
    """Daily table maintenance: compaction and snapshot expiry."""

    schedule: str = Field(
        default="30 2 * * *", pattern=CRON, max_length=100, description="Cron (5 fields)."
    )
    target_file_size_mb: int = Field(
        default=128, ge=16, le=1024, description="Compaction target data file size."
    )
    snapshot_retention: Duration = Field(
        default=timedelta(days=7), description="Snapshots older than this are expired."
    )


class SparkPodSpec(SpecModel):
    """Cores and memory of the driver or of each executor."""

    cores: int = Field(default=1, ge=1, le=64, description="CPU cores.")
    memory: str = Field(default="1g", pattern=r"^[0-9]+[kmgt]$", description="JVM memory, e.g. 2g.")


class ExecutorSpec(SparkPodSpec):
    """The executors: how many and how big."""

    instances: int = Field(default=2, ge=1, le=200, description="Executor count.")


class SparkSpec(SpecModel):
    """The Spark image, version and sizes shared by the pipeline's applications."""

    image: str = Field(
        default=DEFAULT_SPARK_IMAGE, pattern=IMAGE, max_length=512, description="Spark image."
    )
    version: str = Field(default="4.1.1", pattern=SPARK_VERSION, description="Spark version.")
    main_application_file: str = Field(
        default=DEFAULT_MAIN_FILE,
        pattern=r"^(local|s3a|https?)://\S+\.py$",
        max_length=1024,
        description="Python entry file; the job name is its first argument.",
    )
    service_account: str = Field(
        default="finlake-spark", pattern=K8S_NAME, max_length=253, description="Driver account."
    )
    driver: SparkPodSpec = Field(default_factory=SparkPodSpec, description="Driver size.")
    executor: ExecutorSpec = Field(
        default_factory=ExecutorSpec,
        description="Executors of the stream, batch and maintenance jobs (alert detection runs "
        "its tasks in its driver, next to its state).",
    )
    driver_memory_overhead: str | None = Field(
        default=None, pattern=QUANTITY, description="Driver memory overhead."
    )
    conf: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Extra sparkConf entries."
    )
    metrics_port: int = Field(
        default=9100, ge=1024, le=65535, description="Driver /metrics port (Prometheus)."
    )


class SecretRef(SpecModel):
    """A Secret in the resource's namespace, referenced by name only."""

    name: str = Field(pattern=K8S_NAME, max_length=253, description="Secret name.")
