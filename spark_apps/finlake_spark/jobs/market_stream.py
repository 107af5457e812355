"""Kafka ``market-data`` -> bronze -> silver (+ quarantine) -> gold bars, per micro-batch."""

from __future__ import annotations

import json
import logging
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from finlake.contracts.compatibility import backward_problems
from finlake.contracts.schemas import schema_text
from finlake.contracts.serde import registry_client
from finlake.errors import ContractViolation
from finlake.lake.tables import (
    MARKET_CLEANED,
    MARKET_DEAD_LETTER,
    MARKET_OHLC_1H,
    MARKET_OHLC_1M,
    MARKET_QUARANTINE,
    MARKET_RAW,
    MARKET_RUNS,
    MARKET_TABLES,
)
from finlake.quality import LATE_RULE, MARKET_TICK_EXPECTATIONS, ExpectationAction
from finlake.spark.session import build_session
from finlake.transforms.bronze import (
    MAGIC_BYTE,
    decode_ticks,
    to_bronze_rows,
    to_dead_letters,
    with_wire_header,
)
from finlake.transforms.gold import to_bars, touched_windows, with_window_start
from finlake.transforms.silver import DUPLICATE, tag_ticks, to_silver_ticks, with_rule_detail
from finlake_spark.config import SparkAppSettings
from finlake_spark.io import append_once, ensure_tables, merge_bars
from finlake_spark.metrics import record_batch

log = logging.getLogger(__name__)
NOT_WIRE_FORMAT = "not in the Confluent wire format (magic byte 0 + 4-byte schema id)"


@dataclass
class BatchCounts:
    """What one micro-batch did, layer by layer."""

    rows_in: int = 0
    bronze_rows: int = 0
    dead_letter_rows: int = 0
    silver_rows: int = 0
    duplicate_rows: int = 0
    dropped_rows: int = 0
    quarantined_rows: int = 0
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    gold_1m_rows: int = 0
    gold_1h_rows: int = 0


class MarketBatch:
    """The foreachBatch function; every write is idempotent so a replayed batch changes nothing."""

    def __init__(self, settings: SparkAppSettings, checkpoint_id: str) -> None:
        self.settings = settings
        self.catalog = settings.spark.catalog
        self.checkpoint_id = checkpoint_id
        self.reader_schema = schema_text("market_tick")
        self._registry: SchemaRegistryClient | None = None
        self._writers: dict[int, tuple[str | None, str | None]] = {}

    def table(self, spark: SparkSession, name: str) -> DataFrame:
        """A lake table by identifier."""
        return spark.table(f"{self.catalog}.{name}")

    def writer_schema(self, schema_id: int) -> tuple[str | None, str | None]:
        """(schema, problem): the registered writer schema, or why it cannot be read as a tick."""
        if schema_id not in self._writers:
            if self._registry is None:
                self._registry = registry_client(self.settings.registry)
            try:
                text = self._registry.get_schema(schema_id).schema_str
            except Exception as error:  # the client raises its own error types per HTTP status
                self._writers[schema_id] = (
                    None,
                    f"schema id {schema_id} not in the registry: {error}",
                )
                return self._writers[schema_id]
            problems = backward_problems(text, self.reader_schema)
            problem = (
                f"schema id {schema_id} is not a MarketTick: {problems[0]}" if problems else None
            )
            self._writers[schema_id] = (text, problem)
        return self._writers[schema_id]

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        spark = records.sparkSession
        marker = f"{self.checkpoint_id}:{batch_id}"
        counts = BatchCounts()
        framed = with_wire_header(records.withColumn("ingest_ts", F.current_timestamp())).persist()
        try:
            counts.rows_in = framed.count()
            bronze, dead = self.decode(spark, framed)
            # Checkpointed, not cached: writing a table drops the caches of plans that read it.
            bronze = bronze.localCheckpoint()
            counts.bronze_rows, counts.dead_letter_rows = bronze.count(), dead.count()
            # An empty append would still cost a commit; skipping one is just as idempotent.
            if counts.bronze_rows:
                append_once(bronze, MARKET_RAW, self.catalog, marker)
            if counts.dead_letter_rows:
                append_once(dead, MARKET_DEAD_LETTER, self.catalog, marker)
            previous = self.previous_run(spark, batch_id)
            new_silver, partition_max = self.to_silver(spark, bronze, previous, counts, marker)
            counts.gold_1m_rows = self.update_bars(spark, new_silver, "minute", MARKET_OHLC_1M)
            counts.gold_1h_rows = self.update_bars(spark, new_silver, "hour", MARKET_OHLC_1H)
            self.write_run(spark, batch_id, counts, partition_max, time.monotonic() - started)
        finally:
            framed.unpersist()
        record_batch(
            counts,
            time.monotonic() - started,
            max(partition_max.values(), default=None),
            self.settings.market.allowed_lateness_s,
        )
        log.info("market batch %s: %s", batch_id, json.dumps(counts.__dict__))

    def decode(self, spark: SparkSession, framed: DataFrame) -> tuple[DataFrame, DataFrame]:
        """(bronze rows, dead letters): each writer schema id decoded on its own."""
        wire = (F.col("magic") == MAGIC_BYTE) & F.col("schema_id").isNotNull()
        ids = [
            row.schema_id for row in framed.filter(wire).select("schema_id").distinct().collect()
        ]
        bronze_parts = [self.table(spark, MARKET_RAW.identifier).limit(0)]
        dead_parts = [
            to_dead_letters(framed.filter(~F.coalesce(wire, F.lit(False))), F.lit(NOT_WIRE_FORMAT))
        ]
        for schema_id in ids:
            subset = framed.filter(F.col("schema_id") == schema_id)
            writer, problem = self.writer_schema(schema_id)
            if writer is None or problem is not None:
                dead_parts.append(to_dead_letters(subset, F.lit(problem)))
                continue
            decoded = decode_ticks(subset, writer, self.reader_schema)
            bad = f"undecodable Avro body for schema id {schema_id}"
            dead_parts.append(to_dead_letters(decoded.filter(F.col("tick").isNull()), F.lit(bad)))
            bronze_parts.append(to_bronze_rows(decoded.filter(F.col("tick").isNotNull())))
        return reduce(DataFrame.unionByName, bronze_parts), reduce(
            DataFrame.unionByName, dead_parts
        )

    def previous_run(self, spark: SparkSession, batch_id: int) -> dict[int, datetime]:
        """Per-partition max event time after the previous batch of this checkpoint."""
        rows = (
            self.table(spark, MARKET_RUNS.identifier)
            .filter(F.col("batch_key").startswith(f"{self.checkpoint_id}:"))
            .filter(F.col("batch_id") < batch_id)
            .orderBy(F.col("batch_id").desc())
            .limit(1)
            .collect()
        )
        return dict(rows[0].partition_max_event_time or {}) if rows else {}

    def to_silver(
        self,
        spark: SparkSession,
        bronze: DataFrame,
        previous: dict[int, datetime],
        counts: BatchCounts,
        marker: str,
    ) -> tuple[DataFrame, dict[int, datetime]]:
        """Append new silver rows and the quarantine; return them and the partition maxima."""
        rules = MARKET_TICK_EXPECTATIONS
        lateness = self.settings.market.allowed_lateness_s
        # One materialized pass decides every row's fate; counts and subsets read from it.
        tagged = tag_ticks(bronze, rules, previous, lateness).localCheckpoint()
        outcomes = {
            row.outcome: row["count"] for row in tagged.groupBy("outcome").count().collect()
        }
        actions = {rule.name: rule.action for rule in rules}
        failing = sorted(o for o in outcomes if actions.get(o) is ExpectationAction.FAIL)
        if failing:
            example = tagged.filter(F.col("outcome") == failing[0]).limit(1).collect()[0]
            raise ContractViolation(f"tick failed expectation {failing[0]}: {example.asDict()}")
        quarantine_rules = [LATE_RULE] + [
            name for name, action in actions.items() if action is ExpectationAction.QUARANTINE
        ]
        candidates = to_silver_ticks(tagged.filter(F.col("outcome").isNull()))
        span = candidates.agg(F.min("timestamp").alias("low")).collect()[0]
        existing = self.table(spark, MARKET_CLEANED.identifier).select("symbol", "timestamp")
        if span.low is not None:
            existing = existing.filter(F.col("timestamp") >= F.lit(span.low))
        new = candidates.join(existing, ["symbol", "timestamp"], "left_anti").localCheckpoint()
        counts.silver_rows = new.count()
        counts.duplicate_rows = (
            outcomes.get(DUPLICATE, 0) + outcomes.get(None, 0) - counts.silver_rows
        )
        counts.dropped_rows = sum(
            n for o, n in outcomes.items() if actions.get(o) is ExpectationAction.DROP
        )
        counts.quarantined_by_rule = {o: n for o, n in outcomes.items() if o in quarantine_rules}
        counts.quarantined_rows = sum(counts.quarantined_by_rule.values())
        if counts.silver_rows:
            append_once(new, MARKET_CLEANED, self.catalog, marker)
        if counts.quarantined_rows:
            quarantine = with_rule_detail(
                tagged.filter(F.col("outcome").isin(quarantine_rules)), rules
            ).withColumn("quarantined_at", F.current_timestamp())
            append_once(quarantine, MARKET_QUARANTINE, self.catalog, marker)
        valid = F.col("outcome").isNull() | F.col("outcome").isin(LATE_RULE, DUPLICATE)
        maxima = (
            tagged.filter(valid)
            .groupBy("kafka_partition")
            .agg(F.max("timestamp").alias("m"))
            .collect()
        )
        partition_max = dict(previous)
        for row in maxima:
            if row.m is not None:
                prior = partition_max.get(row.kafka_partition)
                partition_max[row.kafka_partition] = max(row.m, prior) if prior else row.m
        return new, partition_max

    def update_bars(self, spark: SparkSession, new: DataFrame, unit: str, table: Any) -> int:
        """Recompute every window the new ticks touch from all of silver, and merge the bars."""
        touched = touched_windows(new, unit).persist()
        span = touched.agg(
            F.min("window_start").alias("low"), F.count(F.lit(1)).alias("n")
        ).collect()[0]
        if not span.n:
            touched.unpersist()
            return 0
        silver = self.table(spark, MARKET_CLEANED.identifier).filter(
            F.col("timestamp") >= F.lit(span.low)
        )
        ticks = with_window_start(silver, unit).join(
            touched, ["symbol", "window_start"], "left_semi"
        )
        bars = to_bars(ticks.drop("window_start"), unit).withColumn(
            "updated_at", F.current_timestamp()
        )
        merge_bars(bars, table, self.catalog)
        touched.unpersist()
        return int(span.n)

    def write_run(
        self,
        spark: SparkSession,
        batch_id: int,
        counts: BatchCounts,
        partition_max: dict[int, datetime],
        duration_s: float,
    ) -> None:
        """Record the batch in ``market.pipeline_runs`` (replaces a replayed batch's row)."""
        latest = max(partition_max.values(), default=None)
        lateness = timedelta(seconds=self.settings.market.allowed_lateness_s)
        row = {
            "batch_key": f"{self.checkpoint_id}:{batch_id}",
            "batch_id": batch_id,
            "watermark": latest - lateness if latest else None,
            "max_event_time": latest,
            "partition_max_event_time": partition_max,
            **counts.__dict__,
            "duration_s": duration_s,
        }
        # Built from literals in the JVM: createDataFrame would start a Python worker per batch.
        maxima = [x for p, m in sorted(partition_max.items()) for x in (F.lit(p), F.lit(m))]
        by_rule = [
            x
            for rule, n in sorted(counts.quarantined_by_rule.items())
            for x in (F.lit(rule), F.lit(n))
        ]
        values = {
            **row,
            "partition_max_event_time": F.create_map(*maxima),
            "quarantined_by_rule": F.create_map(*by_rule),
        }
        target = self.table(spark, MARKET_RUNS.identifier).drop("committed_at").schema
        columns = [
            (value if isinstance(value, Column) else F.lit(value)).cast(field.dataType).alias(name)
            for name, value, field in ((f.name, values[f.name], f) for f in target)
        ]
        frame = spark.range(1).select(*columns, F.current_timestamp().alias("committed_at"))
        frame.createOrReplaceTempView("market_run")
        spark.sql(
            f"""
            MERGE INTO {MARKET_RUNS.qualified(self.catalog)} AS t USING market_run AS s
            ON t.batch_key = s.batch_key
            WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *
            """
        )


def checkpoint_id(checkpoint: Path) -> str:
    """The query id Spark keeps in the checkpoint, created first so every batch can name it.

    Spark reuses an existing ``metadata`` file, so a restart keeps the id and a new
    checkpoint gets a new one (which is how idempotency markers stay unambiguous).
    """
    metadata = checkpoint / "metadata"
    if not metadata.exists():
        checkpoint.mkdir(parents=True, exist_ok=True)
        metadata.write_text(json.dumps({"id": str(uuid.uuid4())}) + "\n")
    return str(json.loads(metadata.read_text().splitlines()[0])["id"])


def start(spark: SparkSession, settings: SparkAppSettings, *, once: bool) -> StreamingQuery:
    """Start the stream: Kafka source, foreachBatch sink, checkpoint under $FINLAKE_HOME."""
    ensure_tables(spark, settings, MARKET_TABLES)
    checkpoint = settings.home.resolve() / "checkpoints" / "market-stream"
    source = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap)
        .option("subscribe", settings.market.topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", settings.market.max_offsets_per_trigger)
        # Retention may delete unread records: keep going, the gap shows in the offsets.
        .option("failOnDataLoss", "false")
        .load()
    )
    writer = source.writeStream.option("checkpointLocation", str(checkpoint))
    writer = (
        writer.trigger(availableNow=True)
        if once
        else writer.trigger(processingTime=f"{settings.market.trigger_interval_s} seconds")
    )
    batch = MarketBatch(settings, checkpoint_id(checkpoint))
    return writer.foreachBatch(batch).queryName("market-stream").start()


def run(settings: SparkAppSettings, *, once: bool) -> None:
    """Run the market stream until it stops (``once``: until Kafka is drained)."""
    spark = build_session(settings, app_name="finlake-market-stream")
    query = start(spark, settings, once=once)

    def stop(signum: int, _frame: object) -> None:
        # The running micro-batch finishes; the checkpoint makes the next start resume there.
        log.info("market stream: signal %s, stopping", signum)
        query.stop()

    signal.signal(signal.SIGTERM, stop)
    query.awaitTermination()
