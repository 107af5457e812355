"""Fixtures of the ingestion tests: yfinance's state reset per test, a fake clock, fake Yahoo."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yfinance as yf
from yfinance import cache
from yfinance.data import SingletonMeta, YfData

from tests.unit.finlake_ingestion.fake_yahoo import SESSION_OPEN, FakeClock, FakeYahoo


@pytest.fixture(autouse=True)
def _cold_yfinance(tmp_path: Path) -> None:
    # yfinance keeps the cookie, crumb and cookie strategy in a process-wide singleton, and time
    # zones and cookies in SQLite files (under the user's cache by default). Each test starts
    # from none, as a new pod does, so the requests it sees do not depend on the tests before.
    yf.set_tz_cache_location(str(tmp_path / "yfinance-cache"))
    # The cache objects keep their database once opened: drop them to open the new location.
    cache._TzCacheManager._tz_cache = None
    cache._CookieCacheManager._Cookie_cache = None
    SingletonMeta._instances.pop(YfData, None)


@pytest.fixture
def clock() -> FakeClock:
    """Twenty minutes into the fixtures' trading session."""
    return FakeClock(SESSION_OPEN + timedelta(minutes=20, seconds=5))


@pytest.fixture
def yahoo(clock: FakeClock) -> Iterator[FakeYahoo]:
    with FakeYahoo(clock) as fake:
        yield fake
