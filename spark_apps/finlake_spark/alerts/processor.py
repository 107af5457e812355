"""The Spark side of detection: tick decoding and the per-symbol stateful processor.

Why ``transformWithState`` (Spark 4.1, arbitrary state API v2) and not windowed aggregations:
``for``, the fire modes and edge-triggered conditions need per-rule memory (episode start,
bars already fired) that no aggregation over watermarked windows can express. The state is one
JSON value per symbol, bounded by the rules (see ``state.py``), and event-time timers on the
watermark close the bars of idle symbols (once_per_bar_close) and evict symbols idle for longer
than any rule looks back. ``applyInPandasWithState`` would do too, but PySpark 4.1.1 cannot read
its own per-group state rows with pyarrow 26 (null-padded int fields come back as floats).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql.streaming.stateful_processor import (
    ExpiredTimerInfo,
    StatefulProcessor,
    StatefulProcessorHandle,
    TimerValues,
)

from finlake.config import RegistrySettings
from finlake.contracts.models import MarketTick
from finlake.contracts.schemas import schema_text
from finlake.contracts.serde import ContractDeserializer, asking_again, registry_client
from finlake.errors import ContractViolation
from finlake.transforms.bronze import decode_by_schema, with_wire_header
from finlake_spark.alerts.evaluator import SymbolEvaluator
from finlake_spark.alerts.rules import TaskRules
from finlake_spark.alerts.state import Firing, SymbolState, Tick
from finlake_spark.zip_imports import install as cheap_zip_invalidation

# Runs in the Python worker too (unpickling the processor imports this module): from the next task
# on, the worker's per-task import cache invalidation no longer re-reads pyspark.zip and the jars.
cheap_zip_invalidation()

log = logging.getLogger(__name__)
EVENT_SCHEMA = (
    "event_id string, rule string, kind string, symbol string, severity string, "
    "window_start_ms bigint, window_end_ms bigint, fired_at_ms bigint, value double, "
    "threshold double, message string, labels_json string"
)
EVENT_SCHEMA_FIELDS = [part.split()[0] for part in EVENT_SCHEMA.split(", ")]
REJECTED = "rejected"
"""``kind`` of an output row that is no event: a record not evaluated, ``message`` says why."""
NOT_POSITIVE = "price or volume missing, not a finite number or not positive"
AHEAD = "timestamp more than {seconds} s after the record was produced (produced_at)"
_DESERIALIZERS: dict[tuple[str, str], ContractDeserializer[MarketTick]] = {}


def _deserializer(registry: RegistrySettings, topic: str) -> ContractDeserializer[MarketTick]:
    key = (registry.ccompat_url, topic)
    if key not in _DESERIALIZERS:
        _DESERIALIZERS[key] = ContractDeserializer(registry_client(registry), topic, MarketTick)
    return _DESERIALIZERS[key]


def decoded_ticks(records: DataFrame, writers: Mapping[int, str], max_ahead_s: int) -> DataFrame:
    """Kafka records -> the processor's input rows, decoded in the JVM where the writer schema
    is one of ``writers`` (every readable version registered when the query started).

    A record in another writer schema (registered later) keeps its bytes in ``raw`` and is
    decoded by the processor, in Python, with the registry client; ``error`` carries why a
    decoded tick cannot be evaluated, and such a row has no ``timestamp``: a tick stamped far
    ahead (more than ``max_ahead_s`` after it was produced) must not move the watermark. The key
    is the Kafka key (the producer keys by symbol) until the tick says otherwise, so a record that
    only Python can decode lands in its group.
    """
    framed = decode_by_schema(with_wire_header(records), writers, schema_text("market_tick"))
    tick = F.col("tick")
    price = tick.price.cast("double")
    finite = ~F.isnan(price) & (F.abs(price) < F.lit(float("inf")))
    usable = finite & (price > 0) & (tick.volume >= 0)
    ahead = tick.timestamp > tick.produced_at + F.make_dt_interval(secs=F.lit(max_ahead_s))
    error = (
        F.when(tick.isNull(), F.lit(None))
        .when(~F.coalesce(usable, F.lit(False)), F.lit(NOT_POSITIVE))
        .when(ahead, F.lit(AHEAD.format(seconds=max_ahead_s)))
    )
    return framed.withColumn("error", error).select(
        F.coalesce(tick.symbol, F.col("key").cast("string"), F.lit("")).alias("symbol"),
        F.when(F.col("error").isNull(), F.unix_millis(tick.timestamp)).alias("timestamp_ms"),
        F.when(F.col("error").isNull(), tick.timestamp).alias("timestamp"),
        price.alias("price"),
        tick.volume.cast("bigint").alias("volume"),
        "error",
        # An absent value (a tombstone) decodes to an error in Python like any bad bytes.
        F.when(tick.isNull(), F.coalesce(F.col("value"), F.unhex(F.lit("")))).alias("raw"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
    )


def python_decoded(
    row: Row, registry: RegistrySettings, topic: str, wait_s: float, max_ahead_s: int
) -> Tick | str:
    """The tick of a row the JVM could not decode, or why it cannot be evaluated.

    While the registry does not answer, asked again for ``wait_s``; then RegistryError: the
    batch fails and Kafka keeps the record (a rejected tick would never be evaluated).
    """
    decode = _deserializer(registry, topic)
    try:
        tick = asking_again(
            lambda: decode(bytes(row.raw)),
            url=registry.ccompat_url, wait_s=wait_s, what="decoding a tick",
        )  # fmt: skip
    except ContractViolation as error:
        return str(error)[:500]
    price, volume = tick.price, tick.volume
    if price is None or not math.isfinite(price) or price <= 0 or volume is None or volume < 0:
        return NOT_POSITIVE
    if tick.timestamp > tick.produced_at + timedelta(seconds=max_ahead_s):
        return AHEAD.format(seconds=max_ahead_s)
    return Tick(int(tick.timestamp.timestamp() * 1000), tick.price, tick.volume)


def rejected_row(symbol: str, reason: str) -> Row:
    """The output row of a record not evaluated (counted by the sink, never sent)."""
    fields = dict.fromkeys(EVENT_SCHEMA_FIELDS)
    return Row(**{**fields, "kind": REJECTED, "symbol": symbol, "message": reason})


def firing_row(firing: Firing) -> Row:
    """The output row of one firing."""
    import json

    fields = firing.model_dump(exclude={"labels"})
    return Row(**fields, labels_json=json.dumps(firing.labels, sort_keys=True))


class AlertProcessor(StatefulProcessor):
    """Keeps one :class:`SymbolState` per symbol and evaluates the rules on each new tick (the
    rules of the micro-batch: :class:`~finlake_spark.alerts.rules.TaskRules`)."""

    def __init__(
        self, registry: RegistrySettings, topic: str, registry_wait_s: float, max_ahead_s: int
    ) -> None:
        self.registry = registry
        self.topic = topic
        self.registry_wait_s = registry_wait_s
        self.max_ahead_s = max_ahead_s

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        # Read when a row or timer is handled, from the task (the driver also calls init, alone,
        # to learn the state schema: no task, no rules there).
        self.rules = TaskRules()
        self.value = handle.getValueState("symbol_state", "json string")

    def _load(self) -> SymbolState:
        stored = self.value.get()  # None when absent: one state round trip, not two
        return SymbolState() if stored is None else SymbolState.model_validate_json(stored[0])

    def _rearm(self, state: SymbolState, wake: int | None) -> None:
        """Keep the registered timer if it wakes no later than ``wake``, else replace it.

        An early wake-up is harmless (the timer handler only closes bars the watermark has passed
        and evicts idle symbols, then re-arms), so the eviction moment moving later with every
        tick costs no timer calls; only an earlier moment (a pending bar close) replaces it.
        """
        current = state.timer_ms
        if current is not None and wake is not None and current <= wake:
            return
        if current is not None:
            self.handle.deleteTimer(current)
        if wake is not None:
            self.handle.registerTimer(wake)
        state.timer_ms = wake

    def _save(self, evaluator: SymbolEvaluator) -> None:
        state = evaluator.state
        if not evaluator.rules or state.last_ms is None:
            self._rearm(state, None)
            self.value.clear()  # no rule watches the symbol: nothing to remember
            return
        self._rearm(state, evaluator.next_timer_ms())
        self.value.update((state.model_dump_json(),))

    def handleInputRows(
        self,
        key: Any,
        rows: Iterator[Row],
        timerValues: TimerValues,  # noqa: ARG002 (Spark passes it by name)
    ) -> Iterator[Row]:
        symbol = str(key[0])
        usable: list[tuple[Tick, int, int]] = []
        rejected: list[Row] = []
        for row in rows:
            if row.raw is not None:  # a writer schema the JVM did not know: decode here
                decoded = python_decoded(
                    row, self.registry, self.topic, self.registry_wait_s, self.max_ahead_s
                )
            else:
                decoded = row.error or Tick(row.timestamp_ms, row.price, row.volume)
            if isinstance(decoded, str):
                rejected.append(rejected_row(symbol, decoded))
            else:
                usable.append((decoded, row.kafka_partition, row.kafka_offset))
        yield from rejected
        if not usable:
            return
        evaluator = SymbolEvaluator(symbol, self._load(), self.rules.rules_for(symbol))
        # Kafka order breaks event-time ties, so a replay keeps the same tick of a duplicate.
        ticks = [
            tick for tick, _, _ in sorted(usable, key=lambda t: (t[0].timestamp_ms, t[1], t[2]))
        ]
        firings = evaluator.process(ticks, int(time.time() * 1000)) if evaluator.rules else []
        if evaluator.skipped:
            skipped = evaluator.skipped
            log.warning("%s: %d ticks at or before the last evaluated one", symbol, skipped)
        self._save(evaluator)
        for firing in firings:
            yield firing_row(firing)

    def handleExpiredTimer(
        self,
        key: Any,
        timerValues: TimerValues,
        expiredTimerInfo: ExpiredTimerInfo,
    ) -> Iterator[Row]:
        symbol = str(key[0])
        state = self._load()
        if state.timer_ms is not None and state.timer_ms <= expiredTimerInfo.getExpiryTimeInMs():
            state.timer_ms = None  # Spark removed the expired timer
        evaluator = SymbolEvaluator(symbol, state, self.rules.rules_for(symbol))
        watermark = timerValues.getCurrentWatermarkInMs()
        firings = evaluator.close_bars(watermark, int(time.time() * 1000))
        if evaluator.is_expired(watermark):
            self._rearm(state, None)
            if evaluator.forget():
                self.value.clear()
            else:  # no timer: nothing more happens to it until its next tick
                self.value.update((evaluator.state.model_dump_json(),))
        else:
            self._save(evaluator)
        for firing in firings:
            yield firing_row(firing)

    def close(self) -> None:
        pass
