"""Settings of the Spark applications: the shared fragments plus the market stream's own."""

from __future__ import annotations

from pydantic import BaseModel, Field

from finlake.config import FinlakeSettings
from finlake.contracts.topics import MARKET_DATA


class MarketStreamSettings(BaseModel):
    """The market stream: trigger, lateness, batch size."""

    topic: str = Field(default=MARKET_DATA, description="Kafka topic the ticks are read from.")
    trigger_interval_s: float = Field(default=10.0, gt=0, description="Micro-batch interval.")
    allowed_lateness_s: int = Field(
        default=600, ge=0, description="Ticks older than max event time minus this are late."
    )
    max_offsets_per_trigger: int = Field(
        default=500_000, ge=1, description="Kafka records per micro-batch at most."
    )
    registry_wait_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a batch waits for an unanswering schema registry before it stops "
        "the stream (its records stay in Kafka); never a reason to dead-letter a record.",
    )
    metrics_port: int | None = Field(
        default=None, description="Serve Prometheus /metrics on this port while running."
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface /metrics binds: loopback locally, 0.0.0.0 in a pod (the operator "
        "sets it) so Prometheus and the operator can read it.",
    )


class SparkAppSettings(FinlakeSettings):
    """Everything a Spark application reads (env ``FINLAKE_*``, e.g. FINLAKE_MARKET__...)."""

    market: MarketStreamSettings = Field(default_factory=MarketStreamSettings)
