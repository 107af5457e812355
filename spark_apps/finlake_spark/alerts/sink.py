"""The foreachBatch sink: new firings to Kafka (Avro, key event_id), then to ``alerts.events``.

Kafka first: a crash between the two replays the batch with the same ids, which the table does
not hold yet, so the events are sent again under the same ids (the alert service delivers each
id once). The table is written with a MERGE on event_id, and firings whose id it already holds
(a replay over a new checkpoint) are sent nowhere.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer
from pyspark import Accumulator
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from finlake.contracts.models import AlertEvent
from finlake.contracts.serde import ContractSerializer, registry_client
from finlake.errors import FinlakeError
from finlake.kafka_io import PublishResult, producer_config
from finlake.lake.tables import ALERTS_EVENTS
from finlake_spark.alerts import metrics
from finlake_spark.alerts.config import DetectionAppSettings
from finlake_spark.alerts.rules import RuleSource

log = logging.getLogger(__name__)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


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

    def __init__(
        self, settings: DetectionAppSettings, rules: RuleSource, rejected: Accumulator[int]
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.rejected = rejected
        self._rejected_seen = 0
        self._producer: Producer | None = None
        self._serializer: ContractSerializer[AlertEvent] | None = None

    def __call__(self, firings: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        problem = self.rules.problem
        self.rules.refresh()  # this batch's stateful step reads the snapshot when it runs below
        if self.rules.problem is not None and self.rules.problem != problem:
            metrics.RULE_ERRORS.inc()
        metrics.RULES.set(len(self.rules.rules))
        rows = firings.collect()  # one action: the stateful operator must run exactly once
        rejected = self.rejected.value - self._rejected_seen
        if rejected:
            self._rejected_seen += rejected
            metrics.REJECTED.inc(rejected)
            log.warning("batch %s: %d market-data records not evaluated", batch_id, rejected)
        if rows:
            self.write(firings.sparkSession, rows, batch_id)
        metrics.BATCH_SECONDS.observe(time.monotonic() - started)

    def write(self, spark: SparkSession, rows: list[Row], batch_id: int) -> None:
        """Send and store the firings whose ids are new."""
        events = {row.event_id: to_event(row) for row in rows}
        known = self.known_ids(spark, list(events.values()))
        new = [event for event_id, event in events.items() if event_id not in known]
        metrics.DUPLICATES.inc(len(events) - len(new))
        if not new:
            return
        self.send(new)
        self.store(spark, new)
        for event in new:
            metrics.EVENTS.labels(event.rule, event.kind).inc()
        log.info("batch %s: %d alert events (%d already known)", batch_id, len(new), len(known))

    def known_ids(self, spark: SparkSession, events: list[AlertEvent]) -> set[str]:
        """The ids among ``events`` that alerts.events already holds."""
        low = min(event.window_start for event in events)
        found = (
            spark.table(ALERTS_EVENTS.qualified(self.settings.spark.catalog))
            .filter(F.col("window_start") >= F.lit(low))
            .filter(F.col("event_id").isin([event.event_id for event in events]))
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
            self._serializer = ContractSerializer(client, topic, AlertEvent)
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

    def store(self, spark: SparkSession, events: list[AlertEvent]) -> None:
        """MERGE the events into alerts.events on event_id (insert only)."""
        columns = ALERTS_EVENTS.column_names
        records: list[dict[str, Any]] = [event.model_dump() for event in events]
        frame = spark.createDataFrame(
            [tuple(record[c] for c in columns) for record in records],
            schema=spark.table(ALERTS_EVENTS.qualified(self.settings.spark.catalog)).schema,
        )
        frame.createOrReplaceTempView("new_alert_events")
        spark.sql(
            f"""
            MERGE INTO {ALERTS_EVENTS.qualified(self.settings.spark.catalog)} AS t
            USING new_alert_events AS s ON t.event_id = s.event_id
            WHEN NOT MATCHED THEN INSERT *
            """
        )
