"""How a MedallionPipeline's Spark jobs run: their schedules, alert detection, table
maintenance, the Spark image and pod sizes (parts of ``medallion_pipeline``'s spec)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from finlake.contracts.market_feed import IMAGE, K8S_NAME, KAFKA_TOPIC
from finlake.contracts.resources import QUANTITY, Duration, SpecModel
from finlake.contracts.topics import ALERTS

# Five cron fields; each a list of numbers, ranges, steps or '*'.
CRON = r"^(\S+\s+){4}\S+$"
TIME_ZONE = r"^(UTC|[A-Za-z]+(/[A-Za-z0-9_+-]+){1,2})$"
SPARK_VERSION = r"^4\.1\.[0-9]+$"
DEFAULT_SPARK_IMAGE = "ghcr.io/finlake/finlake-spark:0.1.0"
DEFAULT_MAIN_FILE = "local:///opt/finlake/finlake_spark/main.py"
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: number for number, name in enumerate(MONTHS, start=1)}),
    ("day of week", 0, 6, {name: number for number, name in enumerate(WEEKDAYS)}),
)
"""Name, bounds and names of each cron field, as the spark-operator's parser (robfig/cron v3,
``ParseStandard``) takes them: its day of week stops at 6, so 7 is refused, not Sunday."""


def _cron_value(text: str, field: tuple[str, int, int, dict[str, int]]) -> int:
    name, low, high, names = field
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ValueError(f"{name} {text!r} is not a number" + (" or a name" if names else ""))
    value = int(text)
    if not low <= value <= high:
        hint = " (Sunday is 0 or SUN)" if "sun" in names else ""
        raise ValueError(f"{name} {value} is out of range {low}-{high}{hint}")
    return value


def _check_cron_part(part: str, field: tuple[str, int, int, dict[str, int]]) -> None:
    """One comma-separated part of a field: ``*``/``?``, a value or ``a-b``, each ``/step``."""
    name, _, high, _ = field
    span, slash, step = part.partition("/")
    if slash and not (step.isdigit() and int(step) > 0):
        raise ValueError(f"{name} {part!r}: the step after / must be a positive number")
    if span in ("*", "?"):
        return
    first, dash, last = span.partition("-")
    start = _cron_value(first, field)
    # A single value with a step runs from it to the field's end (``5/15``: 5, 20, 35, 50).
    end = _cron_value(last, field) if dash else (high if slash else start)
    if start > end:
        raise ValueError(f"{name} {part!r}: the range starts after it ends ({start} > {end})")


def check_cron(schedule: str) -> str:
    """``schedule`` if the spark-operator can parse it, else ValueError naming the wrong field.

    The CRD's pattern only counts the five fields; a schedule it lets through that the
    spark-operator cannot parse leaves its ScheduledSparkApplication in FailedValidation."""
    fields = schedule.split()
    if len(fields) != len(CRON_FIELDS):
        raise ValueError(f"{schedule!r} is not a cron of 5 fields (minute hour day month weekday)")
    for text, field in zip(fields, CRON_FIELDS, strict=True):
        for part in text.split(","):
            try:
                _check_cron_part(part, field)
            except ValueError as error:
                raise ValueError(f"cron {schedule!r}: {error}") from None
    return schedule


def check_time_zone(name: str) -> str:
    """``name`` if it is an IANA time zone (what the spark-operator loads), else ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone, e.g. UTC or Europe/Paris") from None
    return name


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
    suspend: bool = Field(
        default=False,
        description="Stop scheduling new batch runs (the maintenance keeps its own schedule).",
    )

    _cron = field_validator("schedule")(check_cron)
    _time_zone = field_validator("time_zone")(check_time_zone)


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
    time_zone: str | None = Field(
        default=None,
        pattern=TIME_ZONE,
        max_length=64,
        description="IANA time zone of the schedule; default: the batch's.",
    )
    suspend: bool = Field(
        default=False,
        description="Stop scheduling new maintenance runs (independent of batch.suspend).",
    )

    _cron = field_validator("schedule")(check_cron)

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_time_zone(value)


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
