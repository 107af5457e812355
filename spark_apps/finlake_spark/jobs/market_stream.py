"""Kafka ``market-data`` -> bronze -> silver (+ quarantine) -> gold bars, per micro-batch."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

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
from finlake.quality import LATE_RULE, MARKET_TICK_EXPECTATIONS, Expectation, ExpectationAction
from finlake.spark.session import build_session
from finlake.transforms.bronze import decode_by_schema, to_bronze_rows, with_wire_header
from finlake.transforms.gold import (
    finish_bars,
    roll_up,
    to_partial_bars,
    touched_windows,
    with_window_start,
)
from finlake.transforms.silver import DUPLICATE, tag_ticks, to_silver_ticks, with_rule_detail
from finlake_spark.config import SparkAppSettings
from finlake_spark.failures import plain_failure
from finlake_spark.io import (
    append_once,
    as_of,
    ensure_tables,
    kafka_stream,
    landed,
    latest_value,
    merge_bars,
    one_row,
)
from finlake_spark.jobs.market_outcomes import (
    UNDECODABLE,
    BatchCounts,
    Steps,
    Summary,
    summarize,
    undecodable,
)
from finlake_spark.jobs.market_resume import APPENDED_ONCE, checkpoint_id, resume_from
from finlake_spark.jobs.market_schemas import NOT_WIRE_FORMAT, WriterSchemas, wire_schema_id
from finlake_spark.metrics import record_batch
from finlake_spark.progress import observe_progress

log = logging.getLogger(__name__)


class MarketBatch(WriterSchemas):
    """The foreachBatch function; every write is idempotent so a replayed batch changes nothing."""

    def __init__(
        self,
        settings: SparkAppSettings,
        checkpoint_id: str,
        expectations: Sequence[Expectation] = MARKET_TICK_EXPECTATIONS,
    ) -> None:
        super().__init__(settings)
        self.catalog = settings.spark.catalog
        self.checkpoint_id = checkpoint_id
        self.topic = settings.market.topic
        # The pipeline's rules with their actions (a MedallionPipeline's spec.expectations).
        self.expectations = tuple(expectations)

    def table(self, spark: SparkSession, name: str) -> DataFrame:
        """A lake table by identifier."""
        return spark.table(f"{self.catalog}.{name}")

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        spark = records.sparkSession
        marker = f"{self.checkpoint_id}:{batch_id}"
        counts = BatchCounts()
        steps = Steps()
        framed = with_wire_header(records.withColumn("ingest_ts", F.current_timestamp()))
        # Commits of this batch that landed before a restart (a replay skips or redoes them).
        done = landed(spark, APPENDED_ONCE, self.catalog, marker)
        previous, previous_symbols = self.previous_run(spark, batch_id)
        known = set(self.subject_ids()) | {i for i, (text, _) in self._writers.items() if text}
        # Reading Kafka, decoding and tagging are one materialized pass; every later step
        # reads from it. Checkpointed, not cached: writing a table drops caches that read it.
        tagged, summary = self.tag(framed, known, previous_symbols)
        pending = summary.pending
        if pending and self.readable(sorted(pending)):
            # A writer schema first seen in this batch: decode the batch again knowing it.
            tagged, summary = self.tag(framed, known | pending, previous_symbols)
        steps.lap("read+decode+tag")
        outcomes = summary.outcomes
        counts.rows_in = sum(outcomes.values())
        counts.dead_letter_rows = outcomes.get(UNDECODABLE, 0)
        counts.bronze_rows = counts.rows_in - counts.dead_letter_rows
        # An empty append would still cost a commit; skipping one is just as idempotent.
        if counts.bronze_rows:
            bronze = tagged.filter(~undecodable())
            append_once(bronze, MARKET_RAW, self.catalog, marker, done, topic=self.topic)
        if counts.dead_letter_rows:
            dead = self.dead_letters(tagged.filter(undecodable()), summary.pending)
            append_once(dead, MARKET_DEAD_LETTER, self.catalog, marker, done, topic=self.topic)
        steps.lap("bronze")
        self.to_silver_and_gold(spark, tagged, summary, counts, marker, done, steps)
        partition_max = summary.partition_max(previous)
        symbol_max = summary.symbol_max(previous_symbols)
        offsets = summary.next_offsets()
        self.write_run(spark, batch_id, counts, (partition_max, symbol_max, offsets), started)
        record_batch(
            counts,
            time.monotonic() - started,
            max(partition_max.values(), default=None),
            self.settings.market.allowed_lateness_s,
        )
        report = {**counts.__dict__, "steps": steps.laps}
        log.info("market batch %s: %s", batch_id, json.dumps(report))

    def tag(
        self, framed: DataFrame, known: set[int], previous: dict[str, datetime]
    ) -> tuple[DataFrame, Summary]:
        """Every record decoded with the ``known`` writer schemas that are readable, tagged.

        A record that does not decode keeps its bytes and gets the outcome ``undecodable`` and
        an ``error``; one of a schema id not looked up yet has ``pending`` set to that id.
        """
        readable = self.readable(sorted(known))
        unreadable = {i: problem for i in sorted(known) if (problem := self.writer_schema(i)[1])}
        decoded = decode_by_schema(framed, readable, self.reader_schema)
        wire = wire_schema_id().isNotNull()
        problem = F.lit(None).cast("string")
        if unreadable:
            problems = F.create_map(*[F.lit(x) for pair in unreadable.items() for x in pair])
            problem = problems[F.col("schema_id")]
        error = (
            F.when(F.col("tick").isNotNull(), F.lit(None).cast("string"))
            .when(~wire, F.lit(NOT_WIRE_FORMAT))
            .when(
                F.col("schema_id").isin(*readable) if readable else F.lit(False),
                F.concat(F.lit("undecodable Avro body for schema id "), F.col("schema_id")),
            )
            .otherwise(problem)
        )
        is_pending = F.col("tick").isNull() & wire & error.isNull()
        rows = to_bronze_rows(
            decoded,
            F.when(F.col("tick").isNull(), F.col("value")).alias("value"),
            F.col("tick").isNull().alias("undecodable"),
            error.alias("error"),
            F.when(is_pending, F.col("schema_id")).alias("pending"),
        )
        lateness = self.settings.market.allowed_lateness_s
        preset = F.when(F.col("undecodable"), F.lit(UNDECODABLE))
        tagged = tag_ticks(rows, self.expectations, previous, lateness, preset)
        tagged = tagged.localCheckpoint()
        return tagged, summarize(tagged)

    def dead_letters(self, undecoded: DataFrame, pending: set[int]) -> DataFrame:
        """Dead-letter rows of tagged records that did not decode, each with the reason."""
        reasons = {
            i: self.writer_schema(i)[1] or f"schema id {i} not decoded" for i in sorted(pending)
        }
        by_id = F.create_map(*[F.lit(x) for pair in reasons.items() for x in pair])
        error = F.coalesce(F.col("error"), by_id[F.col("pending")]) if reasons else F.col("error")
        return undecoded.withColumn("error", error)

    def previous_run(
        self, spark: SparkSession, batch_id: int
    ) -> tuple[dict[int, datetime], dict[str, datetime]]:
        """Per-partition and per-symbol max event times after the previous batch of this
        checkpoint (the first batch of a new one: after the topic's latest batch, where
        ``market_resume`` resumes)."""
        runs = self.table(spark, MARKET_RUNS.identifier)
        mine = F.col("batch_key").startswith(f"{self.checkpoint_id}:")
        rows = (
            runs.filter(mine & (F.col("batch_id") < batch_id))
            .orderBy(F.col("batch_id").desc())
            .limit(1)
            .collect()
        ) or (
            runs.filter((F.col("kafka_topic") == self.settings.market.topic) & ~mine)
            .orderBy(F.col("committed_at").desc())
            .limit(1)
            .collect()
        )
        if not rows:
            return {}, {}
        # A row written before the symbols' clocks were kept has none: nothing is late against
        # the past in the first batch after the upgrade.
        row = rows[0]
        return dict(row.partition_max_event_time or {}), dict(row.symbol_max_event_time or {})

    def to_silver_and_gold(
        self,
        spark: SparkSession,
        tagged: DataFrame,
        summary: Summary,
        counts: BatchCounts,
        marker: str,
        done: dict[str, int | None],
        steps: Steps,
    ) -> None:
        """Append new silver rows and the quarantine, then merge the bars they touch.

        Silver is read as it was before this batch, also when a replay finds this batch's
        silver commit already made: the new rows and the bars come out the same.
        """
        rules = self.expectations
        outcomes = summary.outcomes
        actions = {rule.name: rule.action for rule in rules}
        failing = sorted(o for o in outcomes if o and actions.get(o) is ExpectationAction.FAIL)
        if failing:
            example = tagged.filter(F.col("outcome") == failing[0]).limit(1).collect()[0]
            raise ContractViolation(f"tick failed expectation {failing[0]}: {example.asDict()}")
        quarantine_rules = [LATE_RULE] + [
            name for name, action in actions.items() if action is ExpectationAction.QUARANTINE
        ]
        candidates = to_silver_ticks(tagged.filter(F.col("outcome").isNull()))
        low = summary.earliest(None)
        if MARKET_CLEANED.identifier in done:
            stored = as_of(spark, MARKET_CLEANED, self.catalog, done[MARKET_CLEANED.identifier])
        else:
            stored = self.table(spark, MARKET_CLEANED.identifier)
        # The latest stored event time, from file statistics (no data file is read).
        silver_max = latest_value(stored, "timestamp")
        if low is not None and silver_max is not None and silver_max >= low:
            existing = stored.select("symbol", "timestamp").filter(F.col("timestamp") >= F.lit(low))
            new = candidates.join(existing, ["symbol", "timestamp"], "left_anti").localCheckpoint()
            counts.silver_rows = new.count()
        else:  # no stored tick is as recent as the batch's earliest: nothing to drop
            new = candidates
            counts.silver_rows = outcomes.get(None, 0)
        counts.duplicate_rows = (
            outcomes.get(DUPLICATE, 0) + outcomes.get(None, 0) - counts.silver_rows
        )
        counts.dropped_rows = sum(
            n for o, n in outcomes.items() if actions.get(o) is ExpectationAction.DROP
        )
        counts.quarantined_by_rule = {
            o: n for o, n in outcomes.items() if o is not None and o in quarantine_rules
        }
        counts.quarantined_rows = sum(counts.quarantined_by_rule.values())
        steps.lap("silver")
        # Bars are computed before the silver append: from the stored ticks of the windows the
        # new ticks touch, plus the new ticks (checkpointed, so the append cannot change them).
        partials = self.minute_partials(stored, new, silver_max) if counts.silver_rows else None
        steps.lap("bars")
        if counts.silver_rows:
            append_once(new, MARKET_CLEANED, self.catalog, marker, done, topic=self.topic)
        if counts.quarantined_rows:
            quarantine = with_rule_detail(
                tagged.filter(F.col("outcome").isin(quarantine_rules)), rules
            ).withColumn("quarantined_at", F.current_timestamp())
            append_once(quarantine, MARKET_QUARANTINE, self.catalog, marker, done, topic=self.topic)
        steps.lap("silver_write")
        if partials is not None:
            now = F.current_timestamp().alias("updated_at")
            minutes = finish_bars(partials.filter("touched"), "minute").select("*", now)
            counts.gold_1m_rows = merge_bars(minutes, MARKET_OHLC_1M, self.catalog)
            steps.lap("gold_1m")
            hours = finish_bars(roll_up(partials, "hour"), "hour").select("*", now)
            counts.gold_1h_rows = merge_bars(hours, MARKET_OHLC_1H, self.catalog)
            steps.lap("gold_1h")

    def minute_partials(
        self, stored: DataFrame, new: DataFrame, silver_max: datetime | None
    ) -> DataFrame:
        """1-minute partial bars of every hour the new ticks touch; ``touched``: has a new tick.

        An hour's stored ticks are read only when silver reaches into it; the hour bars are
        rolled up from these minutes, so both tables get bars of all of a window's ticks.
        """
        ticks = new.select("symbol", "timestamp", "price", "volume", F.lit(True).alias("new"))
        if silver_max is not None:
            hours = touched_windows(new, "hour").localCheckpoint()
            first_hour = hours.agg(F.min("window_start")).collect()[0][0]
            if silver_max >= first_hour:
                older = with_window_start(
                    stored.filter(F.col("timestamp") >= F.lit(first_hour)), "hour"
                ).join(F.broadcast(hours), ["symbol", "window_start"], "left_semi")
                ticks = ticks.unionByName(
                    older.select(
                        "symbol", "timestamp", "price", "volume", F.lit(False).alias("new")
                    )
                )
        return to_partial_bars(ticks, "minute", F.max("new").alias("touched")).localCheckpoint()

    def write_run(
        self,
        spark: SparkSession,
        batch_id: int,
        counts: BatchCounts,
        positions: tuple[dict[int, datetime], dict[str, datetime], dict[int, int]],
        started: float,
    ) -> None:
        """Record the batch in ``market.pipeline_runs`` (replaces a replayed batch's row), with
        its ``positions``: the latest event time so far per partition and per symbol, and the
        next offset per partition."""
        partition_max, symbol_max, offsets = positions
        latest = max(partition_max.values(), default=None)
        lateness = timedelta(seconds=self.settings.market.allowed_lateness_s)
        row = {
            "batch_key": f"{self.checkpoint_id}:{batch_id}",
            "batch_id": batch_id,
            "watermark": latest - lateness if latest else None,
            "max_event_time": latest,
            "partition_max_event_time": partition_max,
            "symbol_max_event_time": symbol_max,
            **counts.__dict__,
            "duration_s": time.monotonic() - started,
            "kafka_topic": self.settings.market.topic,
            "next_offsets": offsets,
        }
        # Built from literals in the JVM: createDataFrame would start a Python worker per batch.
        target = self.table(spark, MARKET_RUNS.identifier).drop("committed_at").schema
        frame = one_row(spark, row, target).select("*", F.current_timestamp().alias("committed_at"))
        frame.createOrReplaceTempView("market_run")
        spark.sql(
            f"""
            MERGE INTO {MARKET_RUNS.qualified(self.catalog)} AS t USING market_run AS s
            ON t.batch_key = s.batch_key
            WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *
            """
        )


def start(
    spark: SparkSession,
    settings: SparkAppSettings,
    *,
    once: bool,
    expectations: Sequence[Expectation] = MARKET_TICK_EXPECTATIONS,
) -> StreamingQuery:
    """Start the stream: Kafka source, foreachBatch sink, checkpoint under $FINLAKE_HOME."""
    ensure_tables(spark, settings, MARKET_TABLES)
    checkpoint = settings.home.resolve() / "checkpoints" / "market-stream"
    topic = settings.market.topic
    source = kafka_stream(
        spark,
        settings.kafka.bootstrap,
        topic,
        starting_offsets=resume_from(
            spark, settings.spark.catalog, settings.kafka.bootstrap, topic, checkpoint
        ),
        max_offsets_per_trigger=settings.market.max_offsets_per_trigger,
    )
    writer = source.writeStream.option("checkpointLocation", str(checkpoint))
    writer = (
        writer.trigger(availableNow=True)
        if once
        else writer.trigger(processingTime=f"{settings.market.trigger_interval_s} seconds")
    )
    batch = MarketBatch(settings, checkpoint_id(checkpoint), expectations)
    return writer.foreachBatch(batch).queryName("market-stream").start()


def run(
    settings: SparkAppSettings,
    *,
    once: bool,
    expectations: Sequence[Expectation] = MARKET_TICK_EXPECTATIONS,
) -> None:
    """Run the market stream until it stops (``once``: until Kafka is drained)."""
    spark = build_session(settings, app_name="finlake-market-stream")
    observe_progress(spark)
    query = start(spark, settings, once=once, expectations=expectations)

    def stop(signum: int, _frame: object) -> None:
        # The running micro-batch finishes; the checkpoint makes the next start resume there.
        log.info("market stream: signal %s, stopping", signum)
        query.stop()

    signal.signal(signal.SIGTERM, stop)
    try:
        query.awaitTermination()
    except StreamingQueryException as error:
        # A `fail` expectation (which rule and row) or a registry that did not answer (the
        # records wait in Kafka for a restart): one line, not the JVM's trace.
        plain = plain_failure(error)
        if plain is not None:
            raise plain from None
        raise
