"""Fixtures of the ingestion tests: yfinance's caches in a temp folder, a fake clock, fake Yahoo."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import yfinance as yf

from tests.unit.finlake_ingestion.fake_yahoo import SESSION_OPEN, FakeClock, FakeYahoo


@pytest.fixture(scope="session", autouse=True)
def _yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # yfinance keeps time zones and cookies in SQLite files under the user's cache by default.
    yf.set_tz_cache_location(str(tmp_path_factory.mktemp("yfinance-cache")))


@pytest.fixture
def clock() -> FakeClock:
    """Twenty minutes into the fixtures' trading session."""
    return FakeClock(SESSION_OPEN + timedelta(minutes=20, seconds=5))


@pytest.fixture
def yahoo(clock: FakeClock) -> Iterator[FakeYahoo]:
    with FakeYahoo(clock) as fake:
        yield fake
