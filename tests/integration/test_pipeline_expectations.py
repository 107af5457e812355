"""A MedallionPipeline's own expectations drive the stream (`finlake pipeline run market
--pipeline FILE`; the cluster job reads the same spec): drop leaves no trace but the count,
quarantine keeps the row with its rule, fail stops the pipeline with the rule and the row."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from finlake.config import FinlakeSettings
from finlake.contracts.models import MarketTick
from finlake.kafka_io import publish
from tests.integration.test_market_pipeline import lake, market_env, new_topic, scalar

PIPELINE = """
apiVersion: finlake.io/v1alpha1
kind: MedallionPipeline
metadata:
  name: strict
spec:
  sourceTopic: {topic}
  layers:
    bronze: {{table: market.raw}}
    silver: {{table: market.cleaned, quarantineTable: market.quarantine}}
    gold: {{tables: [market.ohlc_1m, market.ohlc_1h]}}
  expectations:
    - {{name: price_not_null, condition: price IS NOT NULL, action: drop}}
    - {{name: price_positive, condition: price > 0, action: quarantine}}
    - {{name: volume_cap, condition: volume < 1000000, action: {cap_action}}}
  trigger: 10s
  watermark: 10m
"""


def ticks(start: datetime, *odd: tuple[float | None, int]) -> list[MarketTick]:
    """Twenty good AAPL ticks a second apart, then ``odd`` (price, volume) ones."""
    now = datetime.now(UTC)
    rows = [(100.0 + i, 10) for i in range(20)] + list(odd)
    return [
        MarketTick(
            symbol="AAPL",
            timestamp=start + timedelta(seconds=i),
            price=price,
            volume=volume,
            source="test",
            produced_at=now,
        )
        for i, (price, volume) in enumerate(rows)
    ]


def run(env: dict[str, str], pipeline: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", "pipeline", "run", "market", "--once",
         "--pipeline", str(pipeline)],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def test_drop_and_quarantine_actions_come_from_the_pipeline(
    settings: FinlakeSettings, tmp_path: Path
) -> None:
    topic = new_topic(settings, "ticks-actions", partitions=1)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    published = ticks(start, (None, 10), (None, 10), (-1.0, 10), (120.0, 5_000_000))
    assert publish(settings, topic, published, key_field="symbol").delivered == len(published)
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(PIPELINE.format(topic=topic, cap_action="quarantine"))
    # The topic comes from the pipeline file only: the environment names another one.
    done = run(market_env(settings, tmp_path, "not-this-topic"), pipeline)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"MedallionPipeline strict from {pipeline}" in done.stdout
    query = lake(tmp_path)
    assert scalar(query, "SELECT count(*) FROM market.raw") == len(published)
    assert scalar(query, "SELECT count(*) FROM market.cleaned") == 20
    rules = query.run("SELECT rule, count(*) FROM market.quarantine GROUP BY rule ORDER BY rule")
    assert rules[1] == [("price_positive", 1), ("volume_cap", 1)]  # the nulls were dropped


def test_a_fail_action_stops_the_pipeline_naming_the_rule(
    settings: FinlakeSettings, tmp_path: Path
) -> None:
    topic = new_topic(settings, "ticks-fail", partitions=1)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    published = ticks(start, (120.0, 5_000_000))
    publish(settings, topic, published, key_field="symbol")
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(PIPELINE.format(topic=topic, cap_action="fail"))
    done = run(market_env(settings, tmp_path, topic), pipeline)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    # Spark logs the stopped query its own way; what the command says last is one line.
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: tick failed expectation volume_cap: "), done.stderr[-2000:]
    assert "'volume': 5000000" in last
    assert scalar(lake(tmp_path), "SELECT count(*) FROM market.cleaned") == 0
