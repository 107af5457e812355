from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from finlake_spark.jobs.market_outcomes import BatchCounts
from finlake_spark.metrics import record_batch


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_batch_is_counted_per_layer_rule_and_freshness() -> None:
    before_silver = _value("finlake_pipeline_rows_total", pipeline="market", layer="silver",
                           outcome="written")  # fmt: skip
    before_late = _value("finlake_pipeline_quarantined_total", pipeline="market", rule="late")
    counts = BatchCounts(rows_in=10, bronze_rows=9, dead_letter_rows=1, silver_rows=6,
                         duplicate_rows=1, quarantined_rows=2,
                         quarantined_by_rule={"late": 1, "price_positive": 1})  # fmt: skip
    newest = datetime(2026, 11, 26, 12, tzinfo=UTC)
    record_batch(counts, 2.5, newest, lateness_s=600)
    assert _value("finlake_pipeline_rows_total", pipeline="market", layer="silver",
                  outcome="written") == before_silver + 6  # fmt: skip
    assert _value("finlake_pipeline_quarantined_total", pipeline="market", rule="late") == (
        before_late + 1
    )
    assert (
        _value("finlake_pipeline_max_event_time_seconds", pipeline="market") == newest.timestamp()
    )
    assert _value("finlake_pipeline_watermark_seconds", pipeline="market") == (
        newest.timestamp() - 600
    )
