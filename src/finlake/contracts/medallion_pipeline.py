"""MedallionPipeline: a medallion flow (bronze, silver, gold) and the Spark jobs that run it.

Two flows: ``market`` (the default) streams a topic through the layers and recomputes its gold
bars hourly; ``transactions`` has no stream: its hourly batch takes the uploads' bronze through
silver (+ quarantine) to the account summaries (``finlake pipeline run transactions --once``).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from finlake.contracts.market_feed import KAFKA_TOPIC
from finlake.contracts.pipeline_jobs import (
    BatchSpec,
    DetectionSpec,
    MaintenanceSpec,
    SecretRef,
    SparkSpec,
)
from finlake.contracts.resources import Duration, SpecModel, cel, register_kind
from finlake.contracts.storage import PersistenceSpec
from finlake.contracts.topics import MARKET_DATA
from finlake.lake.tables import (
    MARKET_DEAD_LETTER,
    MARKET_RUNS,
    TRANSACTIONS_BATCH_RUNS,
    TRANSACTIONS_QUARANTINE,
    TRANSACTIONS_RAW,
    TRANSACTIONS_SUMMARY,
    TRANSACTIONS_UPLOADS,
    TRANSACTIONS_VALIDATED,
)
from finlake.quality import MARKET_TICK_EXPECTATIONS, Expectation

KIND = "MedallionPipeline"
TABLE = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
TableName = Annotated[str, Field(pattern=TABLE, max_length=128)]


class PipelineFlow(StrEnum):
    """What a pipeline runs: the market stream and its batch, or the transactions batch."""

    MARKET = "market"
    TRANSACTIONS = "transactions"


class SparkJob(StrEnum):
    """The Spark jobs a pipeline runs (the argument the main file dispatches on)."""

    STREAM = "market-stream"
    BATCH = "market-batch"
    TRANSACTIONS_BATCH = "transactions-batch"
    ALERT_DETECTION = "alert-detection"
    MAINTENANCE = "maintenance"


class LayerSpec(SpecModel):
    """One medallion layer: the table it writes."""

    table: str = Field(pattern=TABLE, max_length=128, description="Iceberg table, namespace.name.")


class SilverLayerSpec(LayerSpec):
    """Silver: the validated table and where failing rows go."""

    quarantine_table: str = Field(
        pattern=TABLE, max_length=128, description="Rows failing an expectation, with the rule."
    )


class GoldLayerSpec(SpecModel):
    """Gold: the aggregate tables (one per bar size)."""

    tables: list[TableName] = Field(
        min_length=1, max_length=16, description="Iceberg tables of the aggregates, namespace.name."
    )


class LayersSpec(SpecModel):
    """The three layers and their tables."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.silver.table != self.silver.quarantineTable",
                    "silver.quarantineTable must differ from silver.table",
                    ".silver.quarantineTable",
                ),
                cel(
                    "self.bronze.table != self.silver.table",
                    "silver.table must differ from bronze.table",
                    ".silver.table",
                ),
            ]
        }
    )

    bronze: LayerSpec = Field(description="Source payloads as-is, plus ingest metadata.")
    silver: SilverLayerSpec = Field(description="Typed, deduplicated, validated rows.")
    gold: GoldLayerSpec = Field(description="Business aggregates.")

    @model_validator(mode="after")
    def _check_distinct(self) -> LayersSpec:
        # Beyond the CEL rules: no table may be written by two layers (the schema cannot say it).
        seen: dict[str, str] = {}
        for field, table in self.named_tables():
            if table in seen:
                raise ValueError(f"layers.{field}: table {table} is already used by {seen[table]}")
            seen[table] = f"layers.{field}"
        return self

    def named_tables(self) -> list[tuple[str, str]]:
        """Every table with the field that names it."""
        named = [
            ("bronze.table", self.bronze.table),
            ("silver.table", self.silver.table),
            ("silver.quarantineTable", self.silver.quarantine_table),
        ]
        named += [(f"gold.tables[{i}]", table) for i, table in enumerate(self.gold.tables)]
        return named


class FreshnessSpec(SpecModel):
    """When the pipeline counts as fresh and its quality as OK (read from its metrics)."""

    max_lag: Duration = Field(
        default=timedelta(minutes=5), description="Newest event older than this: stale."
    )
    max_quarantine_ratio: float = Field(
        default=0.05, ge=0, le=1, description="Quarantined / checked rows above this: not OK."
    )
    metrics_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        max_length=1024,
        description="Where the operator reads the stream's metrics; default: the driver service.",
    )


TRANSACTIONS_LAYERS: JsonDict = {
    "bronze": {"table": TRANSACTIONS_RAW.identifier},
    "silver": {
        "table": TRANSACTIONS_VALIDATED.identifier,
        "quarantineTable": TRANSACTIONS_QUARANTINE.identifier,
    },
    "gold": {"tables": [TRANSACTIONS_SUMMARY.identifier]},
}
"""The layers of a transactions pipeline that names none (the tables its batch writes)."""
TRANSACTIONS_MAX_LAG = "90m"
"""freshness.maxLag of a transactions pipeline that sets none: an hourly batch plus half an hour
(Fresh then says whether the last successful batch run finished that recently)."""
STREAM_FIELDS = (
    "source_topic",
    "trigger",
    "watermark",
    "max_offsets_per_trigger",
    "expectations",
    "detection",
    "persistence",
)
"""The fields only a market pipeline's stream reads: a transactions pipeline refuses them."""
_TRANSACTIONS = "has(self.flow) && self.flow == 'transactions'"


def _wire(field: str) -> str:
    return "".join(part if i == 0 else part.title() for i, part in enumerate(field.split("_")))


def _spec_schema(schema: JsonDict) -> None:
    """The CRD side of the flow rules (the validators below enforce the same locally)."""
    # layers is required for a market pipeline only: a transactions one defaults to its tables.
    listed = schema.pop("required", [])
    required = [name for name in listed if name != "layers"] if isinstance(listed, list) else []
    if required:
        schema["required"] = required
    schema["x-kubernetes-validations"] = [
        cel(
            f"has(self.layers) || ({_TRANSACTIONS})",
            "layers is required for a market pipeline",
            ".layers",
        ),
        *(
            cel(
                f"!({_TRANSACTIONS}) || !has(self.{_wire(field)})",
                f"{_wire(field)} is for a market pipeline's stream; "
                "a transactions pipeline has none",
                f".{_wire(field)}",
            )
            for field in STREAM_FIELDS
        ),
        cel(
            f"!({_TRANSACTIONS}) || !has(self.freshness) || !has(self.freshness.metricsUrl)",
            "freshness.metricsUrl reads a market pipeline's stream; a transactions pipeline has "
            "none (its freshness comes from its batch runs)",
            ".freshness.metricsUrl",
        ),
    ]


BOOKKEEPING_TABLES: dict[PipelineFlow, tuple[str, ...]] = {
    PipelineFlow.MARKET: (MARKET_DEAD_LETTER.identifier, MARKET_RUNS.identifier),
    PipelineFlow.TRANSACTIONS: (
        TRANSACTIONS_UPLOADS.identifier,
        TRANSACTIONS_BATCH_RUNS.identifier,
    ),
}
"""Tables a flow's jobs write besides its layers (fixed names, not in the spec)."""


class MedallionPipelineSpec(SpecModel):
    """A medallion pipeline: a market topic streamed through the layers, or transactions batches."""

    model_config = ConfigDict(json_schema_extra=_spec_schema)

    flow: PipelineFlow = Field(
        default=PipelineFlow.MARKET,
        description="market: stream sourceTopic through the layers, recompute gold hourly; "
        "transactions: the hourly batch of the uploaded transactions, no stream.",
    )
    source_topic: str = Field(
        default=MARKET_DATA, pattern=KAFKA_TOPIC, description="Topic (market only)."
    )
    layers: LayersSpec = Field(
        description="Tables per layer; required for market, a transactions pipeline defaults to "
        "transactions.raw, transactions.validated (+ transactions.quarantine) and "
        "transactions.summary."
    )
    expectations: list[Expectation] = Field(
        default_factory=lambda: list(MARKET_TICK_EXPECTATIONS),
        max_length=64,
        description="Bronze -> silver rules, in the order failing rows are attributed.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    trigger: Duration = Field(default=timedelta(seconds=10), description="Micro-batch interval.")
    watermark: Duration = Field(
        default=timedelta(minutes=10),
        description="Allowed lateness: older ticks go to quarantine as late.",
    )
    max_offsets_per_trigger: int = Field(
        default=500_000, ge=1, le=100_000_000, description="Kafka records per micro-batch."
    )
    detection: DetectionSpec = Field(
        default_factory=DetectionSpec,
        description="Alert detection on sourceTopic with the namespace's AlertRules (market only).",
    )
    batch: BatchSpec = Field(default_factory=BatchSpec, description="Hourly batch schedule.")
    maintenance: MaintenanceSpec = Field(
        default_factory=MaintenanceSpec, description="Daily compaction and snapshot expiry."
    )
    spark: SparkSpec = Field(default_factory=SparkSpec, description="Spark image and sizes.")
    persistence: PersistenceSpec | None = Field(
        default=None,
        description="A PersistentVolumeClaim each for the stream's and alert detection's "
        "checkpoints (market only), mounted on their drivers; default: the driver pod's own "
        "disk, so a new driver pod resumes the stream from the offsets the lake recorded and "
        "starts detection from detection.startingOffsets without its rules' state.",
    )
    catalog_secret: SecretRef | None = Field(
        default=None, description="Secret with the catalog / object store credentials."
    )
    freshness: FreshnessSpec = Field(
        default_factory=FreshnessSpec, description="Freshness and quality objectives."
    )

    @field_validator("expectations")
    @classmethod
    def _unique_expectations(cls, expectations: list[Expectation]) -> list[Expectation]:
        names = [expectation.name for expectation in expectations]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate expectation names: {', '.join(duplicates)}")
        return expectations

    @model_validator(mode="before")
    @classmethod
    def _transactions_defaults(cls, data: Any) -> Any:
        """A transactions pipeline's defaults: its batch's tables, a lag objective for a batch."""
        if not isinstance(data, dict) or data.get("flow") != PipelineFlow.TRANSACTIONS:
            return data
        data = dict(data)
        if "layers" not in data:
            data["layers"] = TRANSACTIONS_LAYERS
        freshness = data.get("freshness", {})
        if isinstance(freshness, dict) and not {"maxLag", "max_lag"} & set(freshness):
            data["freshness"] = {**freshness, "maxLag": TRANSACTIONS_MAX_LAG}
        return data

    @model_validator(mode="after")
    def _check_flow(self) -> MedallionPipelineSpec:
        if self.flow is not PipelineFlow.TRANSACTIONS:
            return self
        for field in STREAM_FIELDS:
            if field in self.model_fields_set:
                raise ValueError(
                    f"{_wire(field)} is for a market pipeline's stream; "
                    "a transactions pipeline has none"
                )
        if self.freshness.metrics_url is not None:
            raise ValueError(
                "freshness.metricsUrl reads a market pipeline's stream; a transactions pipeline "
                "has none (its freshness comes from its batch runs)"
            )
        return self

    def maintained_tables(self) -> list[str]:
        """The tables the daily maintenance compacts and expires: the layers, and the flow's own
        bookkeeping (the market stream MERGEs a run record per micro-batch, thousands of small
        commits a day, and reads it back at every batch)."""
        layers = [table for _, table in self.layers.named_tables()]
        own = BOOKKEEPING_TABLES[self.flow]
        return layers + [table for table in own if table not in layers]

    def wire(self) -> dict[str, Any]:
        """The spec as its YAML holds it (camelCase), without the fields its flow does not read."""
        unused = set(STREAM_FIELDS) if self.flow is PipelineFlow.TRANSACTIONS else set()
        wired: dict[str, Any] = self.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude=unused
        )
        return wired


def stream_env(pipeline: MedallionPipelineSpec) -> dict[str, str]:
    """The FINLAKE_* settings of the streaming job for this pipeline (both runtimes read them)."""
    return {
        "FINLAKE_MARKET__TOPIC": pipeline.source_topic,
        "FINLAKE_MARKET__TRIGGER_INTERVAL_S": f"{pipeline.trigger.total_seconds():g}",
        "FINLAKE_MARKET__ALLOWED_LATENESS_S": str(int(pipeline.watermark.total_seconds())),
        "FINLAKE_MARKET__MAX_OFFSETS_PER_TRIGGER": str(pipeline.max_offsets_per_trigger),
        "FINLAKE_MARKET__METRICS_PORT": str(pipeline.spark.metrics_port),
        # In the driver pod: reachable by Prometheus and the operator (locally: loopback).
        "FINLAKE_MARKET__METRICS_HOST": "0.0.0.0",
    }


def detection_env(pipeline: MedallionPipelineSpec) -> dict[str, str]:
    """The FINLAKE_DETECTION__* settings of the alert detection job for this pipeline.

    Its tasks run in its driver (local mode on the driver's cores), not on the executors
    spark-submit was given: the rules' state lives in the checkpoint on the driver's disk, which
    executors in other pods could not share."""
    detection = pipeline.detection
    return {
        "FINLAKE_SPARK__MASTER": f"local[{pipeline.spark.driver.cores}]",
        "FINLAKE_DETECTION__SOURCE_TOPIC": pipeline.source_topic,
        "FINLAKE_DETECTION__ALERTS_TOPIC": detection.alerts_topic,
        "FINLAKE_DETECTION__STATE_PARTITIONS": str(detection.state_partitions),
        "FINLAKE_DETECTION__STARTING_OFFSETS": detection.starting_offsets,
        "FINLAKE_DETECTION__METRICS_PORT": str(pipeline.spark.metrics_port),
        "FINLAKE_DETECTION__METRICS_HOST": "0.0.0.0",
    }


register_kind(KIND, MedallionPipelineSpec)
