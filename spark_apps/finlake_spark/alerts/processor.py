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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pyspark import Accumulator
from pyspark.sql import Column, Row
from pyspark.sql import functions as F
from pyspark.sql.streaming.stateful_processor import (
    ExpiredTimerInfo,
    StatefulProcessor,
    StatefulProcessorHandle,
    TimerValues,
)

from finlake.config import RegistrySettings
from finlake.contracts.models import MarketTick
from finlake.contracts.serde import ContractDeserializer, registry_client
from finlake.errors import ContractViolation
from finlake_spark.alerts.evaluator import SymbolEvaluator
from finlake_spark.alerts.rules import RuleSnapshot
from finlake_spark.alerts.state import Firing, SymbolState, Tick

log = logging.getLogger(__name__)
TICK_TYPE = "struct<symbol:string,timestamp_ms:bigint,price:double,volume:bigint,error:string>"
EVENT_SCHEMA = (
    "event_id string, rule string, kind string, symbol string, severity string, "
    "window_start_ms bigint, window_end_ms bigint, fired_at_ms bigint, value double, "
    "threshold double, message string, labels_json string"
)
_DESERIALIZERS: dict[tuple[str, str], ContractDeserializer[MarketTick]] = {}


def _deserializer(registry: RegistrySettings, topic: str) -> ContractDeserializer[MarketTick]:
    key = (registry.ccompat_url, topic)
    if key not in _DESERIALIZERS:
        _DESERIALIZERS[key] = ContractDeserializer(registry_client(registry), topic, MarketTick)
    return _DESERIALIZERS[key]


def tick_decoder(
    registry: RegistrySettings, topic: str, rejected: Accumulator[int]
) -> Callable[[Column], Column]:
    """A UDF: Kafka value -> tick struct; ``error`` says why a record cannot be evaluated."""

    def decode(value: bytes | None) -> tuple[Any, ...]:
        try:
            tick = _deserializer(registry, topic)(None if value is None else bytes(value))
        except ContractViolation as error:
            rejected.add(1)
            return (None, None, None, None, str(error)[:500])
        if tick.price is None or tick.price <= 0 or tick.volume is None or tick.volume < 0:
            rejected.add(1)
            return (tick.symbol, None, None, None, "price or volume missing or not positive")
        millis = int(tick.timestamp.timestamp() * 1000)
        return (tick.symbol, millis, tick.price, tick.volume, None)

    udf = F.udf(decode, TICK_TYPE)
    return lambda column: udf(column)


def firing_row(firing: Firing) -> Row:
    """The output row of one firing."""
    import json

    fields = firing.model_dump(exclude={"labels"})
    return Row(**fields, labels_json=json.dumps(firing.labels, sort_keys=True))


class AlertProcessor(StatefulProcessor):
    """Keeps one :class:`SymbolState` per symbol and evaluates the rules on each new tick."""

    def __init__(self, rules_snapshot: Path) -> None:
        self.rules_snapshot = rules_snapshot

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        self.snapshot = RuleSnapshot(self.rules_snapshot)
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
        evaluator = SymbolEvaluator(symbol, self._load(), self.snapshot.rules_for(symbol))
        # Kafka order breaks event-time ties, so a replay keeps the same tick of a duplicate.
        ordered = sorted(rows, key=lambda r: (r.timestamp_ms, r.kafka_partition, r.kafka_offset))
        ticks = [Tick(r.timestamp_ms, r.price, r.volume) for r in ordered]
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
        evaluator = SymbolEvaluator(symbol, state, self.snapshot.rules_for(symbol))
        watermark = timerValues.getCurrentWatermarkInMs()
        firings = evaluator.close_bars(watermark, int(time.time() * 1000))
        if evaluator.is_expired(watermark):
            self._rearm(state, None)
            self.value.clear()
        else:
            self._save(evaluator)
        for firing in firings:
            yield firing_row(firing)

    def close(self) -> None:
        pass
