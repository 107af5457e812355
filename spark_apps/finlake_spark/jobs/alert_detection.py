"""Kafka ``market-data`` -> per-symbol rule evaluation -> Kafka ``alerts`` -> ``alerts.events``.

Glue only: the semantics live in ``finlake_spark.alerts`` (evaluator, processor, sink). The
rules are re-read by the driver at every micro-batch and travel with that batch's tasks, so
editing a rule file takes effect without touching the checkpoint, and executors in other pods
need no copy of the files; state is one bounded JSON value per symbol in the RocksDB state
store. Two queries: detection publishes to the alerts topic (micro-batches back to back by
default), and a second one stores what was published in ``alerts.events`` every few seconds, in
its own scheduler pool so that its lake commits never queue the detection's tasks behind them.

``run(settings, once=..., duration_s=...)`` is the public entry point (``finlake pipeline run
alerts`` calls it): until stopped, until Kafka is drained once, or for a bounded time.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from finlake.contracts.serde import readable_writer_schemas, registry_client
from finlake.lake.tables import ALERTS_TABLES
from finlake.spark.session import build_session
from finlake_spark.alerts.config import DetectionAppSettings
from finlake_spark.alerts.processor import EVENT_SCHEMA, AlertProcessor, decoded_ticks
from finlake_spark.alerts.rules import RuleSource
from finlake_spark.alerts.sink import AlertSink, EventsTable
from finlake_spark.failures import plain_failure
from finlake_spark.io import ensure_tables, kafka_stream
from finlake_spark.progress import observe_progress

log = logging.getLogger(__name__)
STATE_STORE = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
POOL = "spark.scheduler.pool"
# A commit writes the batch's changes only, not a RocksDB snapshot (those go to the maintenance
# thread); a checkpoint written without it is read as before.
CHANGELOG = "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled"


def ticks(spark: SparkSession, settings: DetectionAppSettings) -> DataFrame:
    """The source: Kafka records as the processor's input rows, with an event-time watermark.

    Decoded in the JVM for every writer schema the registry held at the start (no Python stage
    before the stateful one); see ``decoded_ticks`` for records in a later one.
    """
    options = settings.detection
    client = registry_client(settings.registry)
    writers, problem = readable_writer_schemas(client, options.source_topic, "market_tick")
    if problem is not None:
        log.warning("alert detection: decoding every record in Python (%s)", problem)
    records = kafka_stream(
        spark,
        settings.kafka.bootstrap,
        options.source_topic,
        starting_offsets=options.starting_offsets,
        max_offsets_per_trigger=options.max_offsets_per_trigger,
    )
    return decoded_ticks(records, writers, options.max_ahead_s).withWatermark(
        "timestamp", f"{options.watermark_delay_s} seconds"
    )


def start(spark: SparkSession, settings: DetectionAppSettings, *, once: bool) -> StreamingQuery:
    """Validate the rules, then start the stream (checkpoint under $FINLAKE_HOME)."""
    options = settings.detection
    rules = RuleSource(options.rules, settings.rules_snapshot, allow_none=options.allow_no_rules)
    rules.refresh()  # invalid rules at start: a clear error, nothing started
    ensure_tables(spark, settings, ALERTS_TABLES)
    spark.conf.set("spark.sql.streaming.stateStore.providerClass", STATE_STORE)
    spark.conf.set(CHANGELOG, "true")
    processor = AlertProcessor(
        settings.registry, options.source_topic, options.registry_wait_s, options.max_ahead_s
    )
    firings = (
        ticks(spark, settings)
        .groupBy("symbol")
        .transformWithState(processor, EVENT_SCHEMA, "Append", "EventTime")
    )
    writer = firings.writeStream.option("checkpointLocation", str(settings.checkpoint))
    interval = settings.detection.trigger_interval_s
    writer = (
        writer.trigger(availableNow=True)
        if once
        else writer.trigger(processingTime=f"{interval} seconds")
    )
    sink = AlertSink(settings, rules)
    spark.sparkContext.setLocalProperty(POOL, "alert-detection")  # the query thread inherits it
    return writer.foreachBatch(sink).queryName("alert-detection").start()


def start_events(
    spark: SparkSession, settings: DetectionAppSettings, *, once: bool
) -> StreamingQuery:
    """Store what the alerts topic holds in alerts.events (MERGE on event_id)."""
    records = kafka_stream(spark, settings.kafka.bootstrap, settings.detection.alerts_topic)
    writer = records.select("value").writeStream.option(
        "checkpointLocation", str(settings.events_checkpoint)
    )
    interval = settings.detection.events_interval_s
    writer = (
        writer.trigger(availableNow=True)
        if once
        else writer.trigger(processingTime=f"{interval} seconds")
    )
    spark.sparkContext.setLocalProperty(POOL, "alert-events-table")
    return writer.foreachBatch(EventsTable(settings)).queryName("alert-events-table").start()


def run(
    settings: DetectionAppSettings,
    *,
    once: bool = False,
    duration_s: float | None = None,
    rules: Sequence[Path] = (),
) -> None:
    """Run detection until SIGTERM, until Kafka is drained (``once``) or for ``duration_s``."""
    if rules:
        detection = settings.detection.model_copy(update={"rules": list(rules)})
        settings = settings.model_copy(update={"detection": detection})
    extra = {
        "spark.scheduler.mode": "FAIR",
        "spark.sql.shuffle.partitions": str(settings.detection.state_partitions),
    }
    spark = build_session(settings, app_name="finlake-alert-detection", extra=extra)
    observe_progress(spark)
    if once:  # drain the market data, then store everything published
        try:
            start(spark, settings, once=True).awaitTermination()
            start_events(spark, settings, once=True).awaitTermination()
        except StreamingQueryException as error:
            raise plain_failure(error) or error from None
        return
    queries = [start(spark, settings, once=False), start_events(spark, settings, once=False)]

    def stop_all() -> None:
        for query in queries:
            query.stop()

    def stop(signum: int, _frame: object) -> None:
        log.info("alert detection: signal %s, stopping", signum)
        stop_all()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
    stopper: threading.Timer | None = None
    if duration_s is not None:
        stopper = threading.Timer(duration_s, stop_all)
        stopper.daemon = True
        stopper.start()
    try:
        # Polled, not awaitAnyTermination: a SIGTERM handler stopping the queries would break
        # that blocking Py4J call.
        while all(query.isActive for query in queries):
            time.sleep(0.5)
    finally:
        stop_all()  # one query ending stops the other: the job is down, not half up
        if stopper is not None:
            stopper.cancel()
    for query in queries:
        failure = query.exception()
        if failure is not None:  # a registry that did not answer: one line, not the trace
            raise plain_failure(failure) or failure from None
