"""The foreachBatch sink: new firings to Kafka (Avro, key event_id), then to ``alerts.events``.

Kafka first: a crash between the two replays the batch with the same ids, which the table does
not hold yet, so the events are sent again under the same ids (the alert service delivers each
id once). Firings whose id the table already holds (a replay over a new checkpoint) are sent
nowhere. The table is only looked up for firings that can be in it: an id fixes its window, so
a window starting after the newest one the table held when the sink started is new unless this
process sent it, which an in-memory set of recent ids tells; live firings thus go to Kafka
without a table scan, and the table gets a plain append of ids it does not hold.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer
from pyspark import Accumulator
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from finlake.contracts.models import AlertEvent
from finlake.contracts.serde import ContractSerializer, registry_client
from finlake.errors import FinlakeError
from finlake.kafka_io import PublishResult, producer_config
from finlake.lake.tables import ALERTS_EVENTS
from finlake_spark.alerts import metrics
from finlake_spark.alerts.config import DetectionAppSettings
from finlake_spark.alerts.rules import RuleSource

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

    def __init__(
        self, settings: DetectionAppSettings, rules: RuleSource, rejected: Accumulator[int]
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.rejected = rejected
        self._rejected_seen = 0
        self._producer: Producer | None = None
        self._serializer: ContractSerializer[AlertEvent] | None = None
        self._sent: OrderedDict[str, None] = OrderedDict()
        self._stored_through: int | None = None
        self._stored_read = False
        self._schema: StructType | None = None

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
        self.store(spark, new)
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
        """Append the events (ids the table does not hold, see ``known_ids``) to alerts.events."""
        table = ALERTS_EVENTS.qualified(self.settings.spark.catalog)
        if self._schema is None:
            self._schema = spark.table(table).schema
        columns = ALERTS_EVENTS.column_names
        records: list[dict[str, Any]] = [event.model_dump() for event in events]
        frame = spark.createDataFrame(
            [tuple(record[c] for c in columns) for record in records], schema=self._schema
        )
        frame.writeTo(table).append()
