"""MarketFeed: which market ticks a producer publishes, from where, how often, to which topic."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from finlake.contracts.resources import (
    DNS_LABEL,
    QUANTITY,
    Duration,
    SpecModel,
    cel,
    register_kind,
)
from finlake.contracts.storage import PersistenceSpec
from finlake.contracts.topics import MARKET_DATA
from finlake.simulate import DEFAULT_SYMBOLS

# Kubernetes names (RFC 1123 subdomain labels) and ConfigMap keys.
K8S_NAME = DNS_LABEL
CONFIG_MAP_KEY = r"^[-._a-zA-Z0-9]+$"
KAFKA_TOPIC = r"^[a-zA-Z0-9._-]{1,249}$"
TICKER = r"^[A-Z0-9][A-Z0-9.=^-]{0,14}$"
IMAGE = r"^[a-z0-9]+([._/:@-][a-zA-Z0-9_.-]+)*$"
KIND = "MarketFeed"
DEFAULT_PRODUCER_IMAGE = "ghcr.io/finlake/finlake-ingestion:0.1.0"
MAX_INLINE_SYMBOLS = 200

Ticker = Annotated[str, Field(pattern=TICKER, max_length=15)]


class FeedSource(StrEnum):
    """Where a feed's ticks come from."""

    YAHOO = "yahoo"
    SIMULATE = "simulate"
    REPLAY = "replay"


class ConfigMapKeyRef(SpecModel):
    """A key of a ConfigMap in the resource's namespace."""

    name: str = Field(pattern=K8S_NAME, max_length=253, description="ConfigMap name.")
    key: str = Field(
        default="symbols",
        pattern=CONFIG_MAP_KEY,
        max_length=253,
        description="Key holding comma- or newline-separated tickers.",
    )


class ContainerResources(SpecModel):
    """CPU and memory of one container (Kubernetes quantities)."""

    cpu_request: str = Field(default="100m", pattern=QUANTITY, description="CPU request.")
    memory_request: str = Field(default="256Mi", pattern=QUANTITY, description="Memory request.")
    cpu_limit: str | None = Field(default=None, pattern=QUANTITY, description="CPU limit.")
    memory_limit: str = Field(default="512Mi", pattern=QUANTITY, description="Memory limit.")


class ProducerSpec(SpecModel):
    """The producer process: image, replicas, resources, metrics port."""

    image: str = Field(
        default=DEFAULT_PRODUCER_IMAGE, pattern=IMAGE, max_length=512, description="Image."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Always, IfNotPresent or Never."
    )
    replicas: int = Field(default=1, ge=0, le=10, description="Producer replicas (0 = stopped).")
    resources: ContainerResources = Field(
        default_factory=ContainerResources, description="Producer container resources."
    )
    metrics_port: int = Field(
        default=9108, ge=1024, le=65535, description="Port of /metrics, /healthz, /readyz."
    )
    persistence: PersistenceSpec | None = Field(
        default=None,
        description="A PersistentVolumeClaim for the producer's state (the Yahoo watermarks: what "
        "each symbol has published, where a backfill starts); default: the pod's own disk, "
        "which a rescheduled pod starts without. One replica at most.",
    )


class SimulateSpec(SpecModel):
    """The simulator: a seeded random walk (no network)."""

    symbols: int = Field(default=5, ge=1, le=1000, description="How many simulated symbols.")
    rate_per_second: float = Field(
        default=100.0, ge=0, le=1_000_000, description="Ticks per second; 0 = no limit."
    )
    seed: int = Field(default=7, description="Seed of the random walk.")


class ReplaySpec(SpecModel):
    """Replay of a CSV or Parquet file of ticks."""

    file: str = Field(
        min_length=1, max_length=1024, description="Path of the file inside the producer."
    )
    pace: str = Field(
        default="fast",
        pattern=r"^(fast|original|[0-9]+(\.[0-9]+)?x)$",
        description="fast, original or a speed-up like 10x.",
    )


SUBJECT_PROBLEM = (
    "schemaSubject must be the topic's name followed by -value (the subject finlake's producers "
    "and jobs use)"
)


class MarketFeedSpec(SpecModel):
    """A market data feed: source, symbols, cadence and budget, destination topic and schema."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.source != 'yahoo' || (has(self.symbols) != has(self.symbolsFrom))",
                    "a yahoo feed needs exactly one of symbols or symbolsFrom",
                ),
                cel(
                    "self.source == 'replay' ? has(self.replay) : !has(self.replay)",
                    "replay is required for source replay and only allowed there",
                ),
                cel(
                    "self.source != 'yahoo' || !has(self.producer) || "
                    "!has(self.producer.replicas) || self.producer.replicas <= 1",
                    "a yahoo feed runs at most one producer (the request budget is per process)",
                    ".producer.replicas",
                ),
                cel(
                    "!has(self.schemaSubject) || self.schemaSubject == "
                    f"(has(self.topic) ? self.topic : '{MARKET_DATA}') + '-value'",
                    SUBJECT_PROBLEM,
                    ".schemaSubject",
                ),
                cel(
                    "!has(self.producer) || !has(self.producer.persistence) || "
                    "!has(self.producer.replicas) || self.producer.replicas <= 1",
                    "a producer with persistence runs as one replica (the one writer of its state)",
                    ".producer.replicas",
                ),
            ]
        }
    )

    source: FeedSource = Field(description="yahoo, simulate or replay.")
    symbols: list[Ticker] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INLINE_SYMBOLS,
        description="Tickers to poll (yahoo); longer lists go in a ConfigMap (symbolsFrom).",
    )
    symbols_from: ConfigMapKeyRef | None = Field(
        default=None, description="ConfigMap key with the tickers, for long lists."
    )
    poll_interval: Duration = Field(
        default=timedelta(seconds=30), description="Time between poll cycles."
    )
    lookback: Duration = Field(
        default=timedelta(hours=1), description="History fetched for a new symbol."
    )
    request_budget_per_minute: int = Field(
        default=60,
        ge=2,
        le=2000,
        description="Yahoo requests per rolling minute, at most; at least 2 (a new symbol takes "
        "two: yfinance probes its time zone first).",
    )
    # Lengths bound: the API server estimates a CEL rule's cost from them.
    topic: str = Field(
        default=MARKET_DATA, pattern=KAFKA_TOPIC, max_length=249, description="Kafka topic."
    )
    schema_subject: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z0-9._-]{1,255}$",
        max_length=255,
        description="Schema registry subject of the record values: `<topic>-value`, the topic "
        "name strategy every finlake producer and job registers and reads under (the default); "
        "another subject is refused, not ignored.",
    )
    simulate: SimulateSpec | None = Field(default=None, description="Simulator settings.")
    replay: ReplaySpec | None = Field(default=None, description="Replay settings.")
    producer: ProducerSpec = Field(
        default_factory=ProducerSpec, description="The producer Deployment."
    )

    @model_validator(mode="after")
    def _check_sources(self) -> MarketFeedSpec:
        if self.source is FeedSource.YAHOO and (self.symbols is None) == (
            self.symbols_from is None
        ):
            raise ValueError("a yahoo feed needs exactly one of symbols or symbolsFrom")
        if (self.source is FeedSource.REPLAY) != (self.replay is not None):
            raise ValueError("replay is required for source replay and only allowed there")
        if self.source is FeedSource.YAHOO and self.producer.replicas > 1:
            raise ValueError("a yahoo feed runs at most one producer (producer.replicas <= 1)")
        if self.schema_subject is not None and self.schema_subject != f"{self.topic}-value":
            raise ValueError(SUBJECT_PROBLEM)
        if self.producer.persistence is not None and self.producer.replicas > 1:
            raise ValueError(
                "a producer with persistence runs as one replica (the one writer of its state)"
            )
        return self

    @property
    def inline_symbols(self) -> tuple[str, ...]:
        """The tickers given in the spec (the simulator's defaults when none are given)."""
        return tuple(self.symbols) if self.symbols else DEFAULT_SYMBOLS


def ingestion_env(feed: MarketFeedSpec) -> dict[str, str]:
    """The FINLAKE_* settings of the ingestion service for this feed (both runtimes read them)."""
    simulate = feed.simulate or SimulateSpec()
    env = {
        "FINLAKE_INGESTION__SOURCE": feed.source.value,
        "FINLAKE_INGESTION__TOPIC": feed.topic,
        "FINLAKE_INGESTION__HTTP_PORT": str(feed.producer.metrics_port),
        "FINLAKE_YAHOO__POLL_INTERVAL_S": _seconds(feed.poll_interval),
        "FINLAKE_YAHOO__LOOKBACK_S": _seconds(feed.lookback),
        "FINLAKE_YAHOO__REQUESTS_PER_MINUTE": str(feed.request_budget_per_minute),
        "FINLAKE_INGESTION__SIMULATE_SYMBOLS": str(simulate.symbols),
        "FINLAKE_INGESTION__SIMULATE_RATE": str(simulate.rate_per_second),
        "FINLAKE_INGESTION__SIMULATE_SEED": str(simulate.seed),
    }
    if feed.symbols is not None:
        env["FINLAKE_YAHOO__SYMBOLS"] = ",".join(feed.symbols)
    if feed.replay is not None:
        env["FINLAKE_INGESTION__REPLAY_FILE"] = feed.replay.file
        env["FINLAKE_INGESTION__REPLAY_PACE"] = feed.replay.pace
    return env


def parse_symbol_list(text: str) -> tuple[str, ...]:
    """Tickers from a ConfigMap value: comma- or newline-separated; # starts a comment."""
    tickers: list[str] = []
    for line in text.splitlines():
        content = line.split("#", 1)[0]
        tickers.extend(part.strip().upper() for part in content.split(",") if part.strip())
    return tuple(dict.fromkeys(tickers))


def _seconds(duration: timedelta) -> str:
    return f"{duration.total_seconds():g}"


register_kind(KIND, MarketFeedSpec)
