"""The Yahoo source the offline tests drive: yfinance's real code path on the locally served
Yahoo (fake_yahoo), time from a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from finlake_ingestion.config import YahooSettings
from finlake_ingestion.metrics import IngestionMetrics
from finlake_ingestion.sources.yahoo import YahooSource
from finlake_ingestion.yahoo_client import YahooClient
from tests.unit.finlake_ingestion.fake_yahoo import FakeClock, FakeYahoo


def make_source(
    yahoo: FakeYahoo,
    clock: FakeClock,
    state_file: Path | None = None,
    heartbeat: Callable[[], object] = lambda: None,
    **options: object,
) -> tuple[YahooSource, IngestionMetrics]:
    """A Yahoo source on the fake Yahoo and the fake clock (AAPL and MSFT unless ``options``
    say otherwise), with its metrics."""
    settings = YahooSettings.model_validate(
        {"symbols": ("AAPL", "MSFT"), "lookback_s": 3600, "backoff_base_s": 5.0} | options
    )
    client = YahooClient(
        interval="1m", prepost=False, timeout_s=5, session=yahoo.session(), wall_clock=clock
    )
    metrics = IngestionMetrics()
    source = YahooSource(
        settings,
        client,
        metrics,
        state_file=state_file,
        clock=clock,
        monotonic=clock.monotonic,
        sleep=clock.advance,
        heartbeat=heartbeat,
    )
    return source, metrics


def value(metrics: IngestionMetrics, name: str, **labels: str) -> float:
    """A metric's sample (0 before it has one)."""
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found
