"""The sinks of detection: new firings to Kafka (Avro, key event_id); Kafka to ``alerts.events``.

``AlertSink`` (the detection query's foreachBatch) refreshes the rules and hands them to the
batch's tasks (``evaluate``), then only publishes: the lake commit of a batch
takes longer than the rest of it, so it is not on the path of an alert. ``EventsTable`` (a query
of its own over the alerts topic, started by the same job) MERGEs the published events into
``alerts.events`` on ``event_id``, so a record read twice is stored once.

A crash between publishing and the checkpoint commit replays the batch with the same ids, which
are sent again under the same ids (the alert service delivers each id once). Firings whose id
the table already holds (a replay over a new checkpoint) are sent nowhere. The table is only
looked up for firings that can be in it: an id fixes its window, so a window starting after the
newest one the table held when the sink started is new unless this process sent it, which an
in-memory set of recent ids tells; live firings thus go to Kafka without a table scan.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime

from confluent_kafka import Producer
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from finlake.contracts.models import AlertEvent
from finlake.contracts.serde import (
    ContractDeserializer,
    ContractSerializer,
    asking_again,
    registry_client,
)
from finlake.errors import ContractViolation, FinlakeError
from finlake.kafka_io import PublishResult, producer_config
from finlake.lake.tables import ALERTS_EVENTS
from finlake_spark.alerts import metrics
from finlake_spark.alerts.config import DetectionAppSettings
from finlake_spark.alerts.processor import REJECTED
from finlake_spark.alerts.rules import RuleSource, share_rules

log = logging.getLogger(__name__)
RECENT_IDS = 100_000
"""Ids of sent events remembered in memory (a replay within one process is one batch at most)."""


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def to_event(row: Row) -> AlertEvent:
    """The contract record of one output row."""
    return AlertEvent(
        event_id=row.event_id,
        rule=row.rule,
        kind=row.kind,
        symbol=row.symbol,
        severity=row.severity,
        window_start=_utc(row.window_start_ms),
        window_end=_utc(row.window_end_ms),
        fired_at=_utc(row.fired_at_ms),
        value=row.value,
        threshold=row.threshold,
        message=row.message,
        labels=json.loads(row.labels_json),
    )


class AlertSink:
    """Refreshes the rules, runs the batch once, and writes what is new."""

    def __init__(self, settings: DetectionAppSettings, rules: RuleSource) -> None:
        self.settings = settings
        self.rules = rules
        self._producer: Producer | None = None
        self._serializer: ContractSerializer[AlertEvent] | None = None
        self._sent: OrderedDict[str, None] = OrderedDict()
        self._stored_through: int | None = None
        self._stored_read = False

    def __call__(self, firings: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        rows = self.evaluate(firings)
        rejected = [row for row in rows if row.kind == REJECTED]
        if rejected:
            metrics.REJECTED.inc(len(rejected))
            reasons = sorted({row.message for row in rejected})
            log.warning(
                "batch %s: %d market-data records not evaluated (%s)",
                batch_id, len(rejected), "; ".join(reasons[:3]),
            )  # fmt: skip
            rows = [row for row in rows if row.kind != REJECTED]
        if rows:
            self.write(firings.sparkSession, rows, batch_id)
        metrics.BATCH_SECONDS.observe(time.monotonic() - started)

    def evaluate(self, firings: DataFrame) -> list[Row]:
        """Refresh the rules, hand them to this batch's tasks, run the stateful step once."""
        problem = self.rules.problem
        self.rules.refresh()
        if self.rules.problem is not None and self.rules.problem != problem:
            metrics.RULE_ERRORS.inc()
        metrics.RULES.set(len(self.rules.rules))
        if self.rules.text is not None:
            # On this (the query's) thread: the job of the collect below carries them.
            share_rules(firings.sparkSession, self.rules.text)
        return firings.collect()  # one action: the stateful operator must run exactly once

    def write(self, spark: SparkSession, rows: list[Row], batch_id: int) -> None:
        """Send and store the firings whose ids are new."""
        events = {row.event_id: to_event(row) for row in rows}
        fresh = [event for event_id, event in events.items() if event_id not in self._sent]
        known = self.known_ids(spark, fresh)
        new = [event for event in fresh if event.event_id not in known]
        metrics.DUPLICATES.inc(len(events) - len(new))
        if not new:
            return
        self.send(new)
        for event in new:
            self._sent[event.event_id] = None
        while len(self._sent) > RECENT_IDS:
            self._sent.popitem(last=False)
        for event in new:
            metrics.EVENTS.labels(event.rule, event.kind).inc()
        dropped = len(events) - len(new)
        log.info("batch %s: %d alert events (%d already known)", batch_id, len(new), dropped)

    def stored_through(self, spark: SparkSession) -> int | None:
        """The newest window start (epoch ms) alerts.events held when the sink started."""
        if not self._stored_read:
            table = spark.table(ALERTS_EVENTS.qualified(self.settings.spark.catalog))
            newest = table.agg(F.max(F.unix_millis("window_start"))).collect()[0][0]
            self._stored_through = None if newest is None else int(newest)
            self._stored_read = True
        return self._stored_through

    def known_ids(self, spark: SparkSession, events: list[AlertEvent]) -> set[str]:
        """The ids among ``events`` that alerts.events already holds."""
        through = self.stored_through(spark) if events else None
        if through is None:
            return set()
        candidates = [event for event in events if _millis(event.window_start) <= through]
        if not candidates:
            return set()
        low = min(event.window_start for event in candidates)
        found = (
            spark.table(ALERTS_EVENTS.qualified(self.settings.spark.catalog))
            .filter(F.col("window_start") >= F.lit(low))
            .filter(F.col("event_id").isin([event.event_id for event in candidates]))
            .select("event_id")
            .collect()
        )
        return {row.event_id for row in found}

    def send(self, events: list[AlertEvent]) -> None:
        """Publish to the alerts topic and wait for every delivery report."""
        topic = self.settings.detection.alerts_topic
        if self._producer is None or self._serializer is None:
            self._producer = Producer(producer_config(self.settings))
            client = registry_client(self.settings.registry)
            self._serializer = asking_again(
                lambda: ContractSerializer(client, topic, AlertEvent),
                url=self.settings.registry.ccompat_url,
                wait_s=self.settings.detection.registry_wait_s,
                what="registering the alert contract",
            )
        result = PublishResult()
        for event in events:
            self._producer.produce(
                topic,
                self._serializer(event),
                event.event_id.encode(),
                on_delivery=result.on_delivery,
            )
        remaining = self._producer.flush(30)
        if remaining or result.failed:
            raise FinlakeError(
                f"{remaining + result.failed} alert events not delivered to {topic}: "
                f"{'; '.join(result.errors[:3]) or 'timed out'}"
            )


class EventsTable:
    """foreachBatch of the alerts topic: its events MERGEd into ``alerts.events`` on event_id."""

    def __init__(self, settings: DetectionAppSettings) -> None:
        self.settings = settings
        self._deserializer: ContractDeserializer[AlertEvent] | None = None

    def decode(self, values: list[bytes | None]) -> list[AlertEvent]:
        """The events among ``values``; a record that is not one is logged and counted."""
        if self._deserializer is None:
            client = registry_client(self.settings.registry)
            topic = self.settings.detection.alerts_topic
            self._deserializer = ContractDeserializer(client, topic, AlertEvent)
        decode = self._deserializer

        def patiently(value: bytes | None) -> AlertEvent:
            return asking_again(
                lambda: decode(value),
                url=self.settings.registry.ccompat_url,
                wait_s=self.settings.detection.registry_wait_s,
                what="decoding an alert event",
            )

        events = []
        for value in values:
            try:
                events.append(patiently(value))
            except ContractViolation as error:
                metrics.UNSTORED.inc()
                log.warning("alerts topic record not stored in alerts.events: %s", error)
        return events

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        values = [row.value for row in records.select("value").collect()]
        events = {event.event_id: event for event in self.decode(values)}
        if not events:
            return
        spark = records.sparkSession
        table = ALERTS_EVENTS.qualified(self.settings.spark.catalog)
        schema = spark.table(table).schema
        columns = ALERTS_EVENTS.column_names
        rows = [tuple(event.model_dump()[c] for c in columns) for event in events.values()]
        spark.createDataFrame(rows, schema=schema).createOrReplaceTempView("new_alert_events")
        spark.sql(
            f"""
            MERGE INTO {table} AS t USING new_alert_events AS s ON t.event_id = s.event_id
            WHEN NOT MATCHED THEN INSERT *
            """
        )
        log.info("alerts.events batch %s: %d events merged", batch_id, len(events))
