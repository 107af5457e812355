"""What a Yahoo poll cycle may spend: every request charged, a deadline, a stop, a heartbeat."""

from __future__ import annotations

import logging
import threading

import pytest

from finlake_ingestion.health import Probes
from tests.unit.finlake_ingestion.fake_yahoo import FakeClock, FakeYahoo
from tests.unit.finlake_ingestion.yahoo_source import make_source, value


def test_every_request_yfinance_sends_is_charged(yahoo: FakeYahoo, clock: FakeClock) -> None:
    source, _ = make_source(yahoo, clock, attempts=3, breaker_failures=10)

    def charged() -> int:
        return source.budget.limit - source.budget.remaining()

    source.confirm(source.poll())  # a new pod: cookie, crumb, then each symbol's probe and bars
    assert charged() == len(yahoo.mock.calls) == 6
    # On any answer >= 400 yfinance fetches a new crumb and asks again, and we retry a 502.
    for failure, times in (("429", 1), ("html", 3)):
        clock.advance(61)
        seen = len(yahoo.mock.calls)
        yahoo.fail("AAPL", failure, times)
        source.confirm(source.poll())
        sent = yahoo.mock.calls[seen:]
        assert charged() == len(sent)
        assert any("/getcrumb" in call.request.url for call in sent)


def test_every_request_waits_at_most_the_request_timeout(
    yahoo: FakeYahoo, clock: FakeClock
) -> None:
    source, _ = make_source(yahoo, clock)
    yahoo.fail("AAPL", "html")
    source.poll()
    # yfinance's own: 30 s for the cookie, 10 s for a time-zone probe.
    timeouts = {call.request.req_kwargs["timeout"] for call in yahoo.mock.calls}
    assert timeouts == {5}


@pytest.mark.parametrize("failure", ["timeout", "html"])
def test_a_stop_mid_cycle_sends_no_further_request(
    yahoo: FakeYahoo, clock: FakeClock, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    caplog.set_level(logging.INFO)
    source, metrics = make_source(yahoo, clock, symbols=("AAPL", "MSFT", "IBM"), attempts=3)
    stop = threading.Event()
    sent_by_then: list[int] = []

    def sigterm_during_msft() -> None:
        if yahoo.chart_requests[-1][0] == "MSFT" and not stop.is_set():
            stop.set()
            sent_by_then.append(len(yahoo.mock.calls) + 1)  # the call arriving is recorded next

    yahoo.on_chart = sigterm_during_msft
    yahoo.fail("MSFT", failure, times=3)  # a timeout would be retried, a 502 asked again
    batch = next(source.batches(stop))
    assert len(yahoo.mock.calls) == sent_by_then[0]
    assert "IBM" not in {symbol for symbol, _ in yahoo.chart_requests}
    assert {t.symbol for t in batch.ticks} == {"AAPL"}  # what came before the stop is kept
    assert "retrying yahoo request" not in caplog.messages
    assert value(metrics, "finlake_ingestion_yahoo_cycle_overruns_total") == 0


def test_a_cycle_past_its_deadline_leaves_the_rest_for_the_next(
    yahoo: FakeYahoo, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    source, metrics = make_source(yahoo, clock, symbols=("AAPL", "MSFT", "IBM"), poll_interval_s=30)
    yahoo.latency_s = 10  # per chart request: AAPL's probe and bars 20 s, MSFT's 20 more
    assert {t.symbol for t in source.poll()} == {"AAPL", "MSFT"}
    assert "IBM" not in {symbol for symbol, _ in yahoo.chart_requests}
    assert value(metrics, "finlake_ingestion_yahoo_cycle_overruns_total") == 1
    [overrun] = [r for r in caplog.records if "past its deadline" in r.getMessage()]
    assert overrun.symbols_left == 1
    yahoo.latency_s = 0
    clock.advance(source.next_delay_s)
    assert "IBM" in {t.symbol for t in source.poll()}  # first in the next cycle


def test_the_heartbeat_advances_with_each_request_of_a_long_cycle(
    yahoo: FakeYahoo, clock: FakeClock
) -> None:
    probes = Probes(stale_after_s=30, clock=clock.monotonic)
    source, _ = make_source(yahoo, clock, heartbeat=probes.beat, attempts=3, backoff_base_s=1)
    yahoo.outage = "timeout"
    yahoo.latency_s = 10  # every chart request hangs for its whole timeout
    started = clock.monotonic()
    source.poll()
    # Three tries at AAPL, then the deadline: the cycle outlasted the probe's staleness limit,
    # yet the probe never went stale, each request beating before it went out.
    assert clock.monotonic() - started > probes.stale_after_s
    assert probes.is_alive()
