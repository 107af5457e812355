"""Every Iceberg table of the market flow: one spec drives Spark DDL, tests and the query layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Column:
    """One column: Spark SQL type and its documentation."""

    name: str
    type: str
    comment: str


@dataclass(frozen=True)
class TableSpec:
    """One table: ``namespace.table``, location under the warehouse, columns, partitioning."""

    identifier: str
    location: str
    columns: tuple[Column, ...]
    partition_by: str | None
    comment: str
    append_only: bool = False

    @property
    def column_names(self) -> list[str]:
        """Column names in table order."""
        return [column.name for column in self.columns]

    def qualified(self, catalog: str) -> str:
        """``catalog.namespace.table``."""
        return f"{catalog}.{self.identifier}"

    def location_in(self, warehouse: Path | str) -> str:
        """The table's URI under ``warehouse`` (a local folder, or a URI such as ``s3://b/w``)."""
        if isinstance(warehouse, Path):
            return (warehouse / self.location).as_uri()
        return f"{warehouse.rstrip('/')}/{self.location}"

    def create_sql(self, catalog: str, warehouse: Path | str) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for Spark, at the design's location, format v2."""
        columns = ",\n  ".join(
            f"{c.name} {c.type} COMMENT '{c.comment.replace(chr(39), chr(39) * 2)}'"
            for c in self.columns
        )
        partition = f"\nPARTITIONED BY ({self.partition_by})" if self.partition_by else ""
        properties = ", ".join(f"'{key}'='{value}'" for key, value in self.properties.items())
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified(catalog)} (\n  {columns}\n) USING iceberg"
            f"{partition}\nCOMMENT '{self.comment}'"
            f"\nLOCATION '{self.location_in(warehouse)}'"
            f"\nTBLPROPERTIES ({properties})"
        )

    @property
    def properties(self) -> dict[str, str]:
        """Iceberg table properties: format v2, 128 MB files; appends spread over every core."""
        properties = {"format-version": "2", "write.target-file-size-bytes": "134217728"}
        if self.append_only:
            # A batch's rows mostly share one day: hash distribution by partition would write
            # them in a single task. Unclustered appends use every core (compaction merges files).
            properties |= {"write.distribution-mode": "none", "write.spark.fanout.enabled": "true"}
        return properties


_KAFKA = (
    Column("kafka_partition", "int", "Kafka partition the record was read from."),
    Column("kafka_offset", "bigint", "Offset of the record in its partition."),
)
_TICK = (
    Column("symbol", "string", "Instrument ticker."),
    Column("timestamp", "timestamp", "Event time of the tick, UTC."),
)
_SOURCE = (
    Column("currency", "string", "ISO 4217 price currency, if known."),
    Column("exchange", "string", "Venue (MIC where known)."),
    Column("source", "string", "Ingestion source: yahoo, replay or simulate."),
)
_INGEST = Column("ingest_ts", "timestamp", "When the pipeline read the record from Kafka, UTC.")

MARKET_RAW = TableSpec(
    "market.raw",
    "market/raw",
    (
        *_TICK,
        Column("price", "double", "Price as the source sent it."),
        Column("volume", "bigint", "Volume as the source sent it."),
        *_SOURCE,
        Column("produced_at", "timestamp", "When the producer published the record, UTC."),
        Column("kafka_topic", "string", "Topic the record was read from."),
        *_KAFKA,
        Column("kafka_key", "string", "Record key (the symbol)."),
        Column("kafka_timestamp", "timestamp", "Kafka record timestamp, UTC."),
        Column("schema_id", "int", "Registry id of the writer schema."),
        _INGEST,
    ),
    "days(timestamp)",
    "Bronze: every decoded market-data record as-is, plus Kafka coordinates.",
    append_only=True,
)
MARKET_DEAD_LETTER = TableSpec(
    "market.dead_letter",
    "market/dead_letter",
    (
        Column("kafka_topic", "string", "Topic the record was read from."),
        *_KAFKA,
        Column("kafka_key", "string", "Record key, if any."),
        Column("kafka_timestamp", "timestamp", "Kafka record timestamp, UTC."),
        Column("value", "binary", "The undecodable payload, byte for byte."),
        Column("error", "string", "Why the payload could not be decoded."),
        _INGEST,
    ),
    "days(ingest_ts)",
    "Records of market-data that are not a decodable MarketTick.",
    append_only=True,
)
MARKET_CLEANED = TableSpec(
    "market.cleaned",
    "market/cleaned",
    (
        *_TICK,
        Column("price", "decimal(10,2)", "Price, two decimals."),
        Column("volume", "bigint", "Shares traded."),
        *_SOURCE,
        *_KAFKA,
        _INGEST,
    ),
    "days(timestamp)",
    "Silver: validated ticks, one per (symbol, timestamp).",
    append_only=True,
)
MARKET_QUARANTINE = TableSpec(
    "market.quarantine",
    "market/quarantine",
    (
        *_TICK,
        Column("price", "double", "Price as the source sent it."),
        Column("volume", "bigint", "Volume as the source sent it."),
        *_SOURCE,
        *_KAFKA,
        _INGEST,
        Column("rule", "string", "The expectation that failed (or late)."),
        Column("detail", "string", "What the rule checks."),
        Column("quarantined_at", "timestamp", "When the row was quarantined, UTC."),
    ),
    "days(timestamp)",
    "Ticks that failed a silver expectation, with the rule.",
    append_only=True,
)


def _bars(identifier: str, location: str, width: str) -> TableSpec:
    money = "decimal(10,2)"
    return TableSpec(
        identifier,
        location,
        (
            Column("symbol", "string", "Instrument ticker."),
            Column("window_start", "timestamp", f"Start of the {width} window, UTC, inclusive."),
            Column("window_end", "timestamp", f"End of the {width} window, UTC, exclusive."),
            Column("open", money, "Price of the earliest tick in the window (event time)."),
            Column("high", money, "Highest price in the window."),
            Column("low", money, "Lowest price in the window."),
            Column("close", money, "Price of the latest tick in the window (event time)."),
            Column("volume", "bigint", "Sum of tick volumes."),
            Column("trade_count", "bigint", "Number of ticks."),
            Column("vwap", "decimal(18,6)", "Volume-weighted average price."),
            Column("updated_at", "timestamp", "When the bar was last recomputed, UTC."),
        ),
        "days(window_start)",
        f"Gold: {width} OHLCV bars per symbol.",
    )


MARKET_OHLC_1M = _bars("market.ohlc_1m", "market/metrics/ohlc_1m", "1-minute")
MARKET_OHLC_1H = _bars("market.ohlc_1h", "market/metrics/ohlc_1h", "1-hour")
MARKET_RUNS = TableSpec(
    "market.pipeline_runs",
    "market/pipeline_runs",
    (
        Column("batch_key", "string", "Checkpoint id and micro-batch id."),
        Column("batch_id", "bigint", "Micro-batch id."),
        Column("watermark", "timestamp", "Max event time so far minus the allowed lateness."),
        Column("max_event_time", "timestamp", "Latest event time that passed the checks so far."),
        Column(
            "partition_max_event_time",
            "map<int,timestamp>",
            "Per Kafka partition, the latest event time seen so far (drives lateness).",
        ),
        Column("rows_in", "bigint", "Kafka records in the batch."),
        Column("bronze_rows", "bigint", "Rows appended to bronze."),
        Column("dead_letter_rows", "bigint", "Undecodable records."),
        Column("silver_rows", "bigint", "Rows appended to silver."),
        Column("duplicate_rows", "bigint", "Rows dropped as duplicates of (symbol, timestamp)."),
        Column("dropped_rows", "bigint", "Rows dropped by expectations with action drop."),
        Column("quarantined_rows", "bigint", "Rows quarantined."),
        Column("quarantined_by_rule", "map<string,bigint>", "Quarantined rows per rule."),
        Column("gold_1m_rows", "bigint", "1-minute bars written."),
        Column("gold_1h_rows", "bigint", "1-hour bars written."),
        Column("duration_s", "double", "Batch duration in seconds."),
        Column("committed_at", "timestamp", "When the batch finished, UTC."),
    ),
    None,
    "One row per micro-batch of the market pipeline: counts and freshness.",
)
MARKET_TABLES = (
    MARKET_RAW,
    MARKET_DEAD_LETTER,
    MARKET_CLEANED,
    MARKET_QUARANTINE,
    MARKET_OHLC_1M,
    MARKET_OHLC_1H,
    MARKET_RUNS,
)
