"""Settings of the alert detection job (env ``FINLAKE_DETECTION__*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from finlake.contracts.topics import ALERTS, MARKET_DATA
from finlake_spark.config import SparkAppSettings


class DetectionSettings(BaseModel):
    """The detection stream: topics, rules, trigger, watermark."""

    source_topic: str = Field(default=MARKET_DATA, description="Topic the ticks are read from.")
    alerts_topic: str = Field(default=ALERTS, description="Topic the alert events go to.")
    rules: list[Path] = Field(
        default_factory=list, description="AlertRule files or folders of *.yaml files."
    )
    allow_no_rules: bool = Field(
        default=False,
        description="Run with no rule while the rule folders hold none (in a cluster: the "
        "namespace's rules ConfigMap before its first AlertRule); off, that is an error.",
    )
    trigger_interval_s: float = Field(
        default=0.0,
        ge=0,
        description="Micro-batch interval; 0 (the default) starts each batch as soon as the "
        "previous one ends: tick -> email p99 0.79 s against 1.39 s with 1 s, where a tick alone "
        "waits up to 1 s for its batch (bench/README.md), for 3.5 times as many batches while "
        "ticks keep arriving.",
    )
    events_interval_s: float = Field(
        default=10.0,
        gt=0,
        description="How often published events are merged into alerts.events (a query of its "
        "own, off the path of an alert).",
    )
    watermark_delay_s: int = Field(
        default=60,
        ge=0,
        description="Bars of idle symbols close (once_per_bar_close) and idle state is evicted "
        "when the max event time minus this passes them.",
    )
    max_ahead_s: int = Field(
        default=300,
        ge=0,
        description="A tick stamped more than this after it was produced (`produced_at`) is not "
        "evaluated: one such tick would move the watermark past every real tick (all of them "
        "then late, dropped) and leave the symbol waiting for that moment.",
    )
    max_offsets_per_trigger: int = Field(
        default=100_000, ge=1, description="Kafka records per micro-batch at most."
    )
    state_partitions: int = Field(
        default=1,
        ge=1,
        description="Partitions of the per-symbol state: tasks of the stateful step per "
        "micro-batch (fixed by the checkpoint once it exists). Each task pays for the Python "
        "state API's set-up and the state store commit (about as long as evaluating 50 symbols), "
        "so one task keeps a batch of a few hundred symbols short; raise it when evaluating the "
        "symbols takes much longer than that.",
    )
    registry_wait_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a batch waits for an unanswering schema registry (decoding a tick "
        "in a schema registered after the start, registering or reading the alert contract) "
        "before it stops the job; its records stay in Kafka, none is rejected for it.",
    )
    starting_offsets: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where a new checkpoint starts reading."
    )
    checkpoint_name: str = Field(
        default="alert-detection", description="Folder under $FINLAKE_HOME/checkpoints."
    )
    metrics_port: int | None = Field(
        default=None, description="Serve Prometheus /metrics on this port while running."
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface /metrics binds: loopback locally, 0.0.0.0 in a pod (the operator "
        "sets it).",
    )


class DetectionAppSettings(SparkAppSettings):
    """Everything the detection job reads."""

    detection: DetectionSettings = Field(default_factory=DetectionSettings)

    @property
    def checkpoint(self) -> Path:
        """The stream's checkpoint folder."""
        return self.home.resolve() / "checkpoints" / self.detection.checkpoint_name

    @property
    def events_checkpoint(self) -> Path:
        """The checkpoint of the query that stores published events in alerts.events."""
        return self.checkpoint.with_name(f"{self.detection.checkpoint_name}-events")

    @property
    def rules_snapshot(self) -> Path:
        """The JSON snapshot of the last valid rules (the driver's, for a restart)."""
        return self.home.resolve() / "state" / f"{self.detection.checkpoint_name}-rules.json"
