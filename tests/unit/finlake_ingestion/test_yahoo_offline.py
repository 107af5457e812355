"""The Yahoo source through yfinance's real code path, with only the HTTP layer served locally."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from curl_cffi.const import CurlECode

from finlake_ingestion.resilience import BreakerState
from finlake_ingestion.yahoo_client import UNHEALTHY, YahooClient, YahooFetchError, classify
from tests.unit.finlake_ingestion.fake_yahoo import SESSION_OPEN, FakeClock, FakeYahoo, curl_error
from tests.unit.finlake_ingestion.yahoo_source import make_source, value


def test_first_poll_publishes_closed_bars_of_every_symbol(
    yahoo: FakeYahoo, clock: FakeClock
) -> None:
    source, _ = make_source(yahoo, clock)
    ticks = source.poll()
    aapl = [t for t in ticks if t.symbol == "AAPL"]
    msft = [t for t in ticks if t.symbol == "MSFT"]
    # 14:30..14:49 are closed at 14:50:05; the 14:50 bar is still filling up.
    assert [t.timestamp for t in aapl] == [SESSION_OPEN + timedelta(minutes=m) for m in range(20)]
    assert len(msft) == 19  # minute 7 had no trade: Yahoo sent nulls and yfinance drops the row
    first = aapl[0]
    assert (first.currency, first.exchange, first.source) == ("USD", "XNAS", "yahoo")
    assert first.price == pytest.approx(234.5, abs=0.01)
    assert first.volume == 20_000
    assert first.produced_at == clock.now.replace(microsecond=0)


def test_polls_never_publish_a_symbol_timestamp_twice(yahoo: FakeYahoo, clock: FakeClock) -> None:
    source, metrics = make_source(yahoo, clock)
    published = []
    for _ in range(4):
        batch = source.poll()
        source.confirm(batch)
        published.extend((t.symbol, t.timestamp) for t in batch)
        clock.advance(30)
    assert len(published) == len(set(published))
    assert sum(1 for s, _ in published if s == "AAPL") == 21  # bars 0..20 closed by 14:51:35
    assert value(metrics, "finlake_ingestion_duplicates_skipped_total", source="yahoo") > 0
    # Every request after the first re-reads a few bars from just before the watermark only.
    later = yahoo.data_requests("AAPL")[-1]
    assert int(later["period1"]) >= int((SESSION_OPEN + timedelta(minutes=14)).timestamp())


def test_unconfirmed_ticks_are_fetched_again(yahoo: FakeYahoo, clock: FakeClock) -> None:
    source, _ = make_source(yahoo, clock)
    first = source.poll()  # say the broker never acknowledged these
    clock.advance(30)
    again = source.poll()
    assert {(t.symbol, t.timestamp) for t in first} <= {(t.symbol, t.timestamp) for t in again}


def test_watermarks_survive_a_restart(tmp_path: Path, yahoo: FakeYahoo, clock: FakeClock) -> None:
    state = tmp_path / "state.json"
    source, _ = make_source(yahoo, clock, state_file=state)
    source.confirm(source.poll())
    clock.advance(120)
    restarted, _ = make_source(yahoo, clock, state_file=state)
    ticks = restarted.poll()
    assert sorted({t.timestamp.minute - 30 for t in ticks if t.symbol == "AAPL"}) == [20, 21]


@pytest.mark.parametrize("kind", ["html", "down", "empty", "timeout"])
def test_bad_responses_are_counted_and_polling_goes_on(
    yahoo: FakeYahoo, clock: FakeClock, kind: str
) -> None:
    source, metrics = make_source(yahoo, clock, attempts=1)
    yahoo.fail("AAPL", kind)
    ticks = source.poll()
    assert {t.symbol for t in ticks} == {"MSFT"}
    label = "timeout" if kind == "timeout" else "bad_response"
    assert value(metrics, "finlake_ingestion_source_errors_total", source="yahoo", kind=label) == 1
    clock.advance(30)
    assert {t.symbol for t in source.poll()} == {"AAPL", "MSFT"}


def test_unknown_symbol_is_parked_and_others_go_on(yahoo: FakeYahoo, clock: FakeClock) -> None:
    source, metrics = make_source(yahoo, clock, symbols=("NOPE", "AAPL"))
    assert {t.symbol for t in source.poll()} == {"AAPL"}
    assert (
        value(
            metrics, "finlake_ingestion_source_errors_total", source="yahoo", kind="unknown_symbol"
        )
        == 1
    )
    asked = len(yahoo.chart_requests)
    clock.advance(30)
    source.poll()
    assert not [s for s, _ in yahoo.chart_requests[asked:] if s == "NOPE"]
    assert source.breaker.state is BreakerState.CLOSED


def test_rate_limit_ends_the_cycle_and_backs_off(yahoo: FakeYahoo, clock: FakeClock) -> None:
    source, metrics = make_source(yahoo, clock, symbols=("AAPL", "MSFT", "IBM"))
    yahoo.fail("AAPL", "429")
    assert source.poll() == []
    assert [s for s, _ in yahoo.chart_requests if s != "AAPL"] == []  # stopped at the first 429
    assert value(metrics, "finlake_ingestion_yahoo_rate_limited_total") == 1
    assert value(metrics, "finlake_ingestion_yahoo_requests_total", outcome="rate_limited") == 1
    assert source.next_delay_s >= 30
    # The next cycle starts with the symbols the rate limit kept waiting.
    clock.advance(source.next_delay_s)
    assert {t.symbol for t in source.poll()} == {"AAPL", "MSFT", "IBM"}


def test_outage_opens_the_breaker_then_backfills_the_gap(
    yahoo: FakeYahoo, clock: FakeClock
) -> None:
    source, metrics = make_source(
        yahoo, clock, breaker_failures=2, breaker_reset_s=60, backoff_max_s=1
    )
    source.confirm(source.poll())
    yahoo.outage = "429"
    for _ in range(2):
        clock.advance(30)
        assert source.poll() == []
    assert source.breaker.state is BreakerState.OPEN
    state = "finlake_ingestion_circuit_breaker_state"
    assert value(metrics, state, source="yahoo", finlake_ingestion_circuit_breaker_state="open")
    asked = len(yahoo.chart_requests)
    clock.advance(30)
    assert source.poll() == []  # open: no request goes out
    assert len(yahoo.chart_requests) == asked
    yahoo.outage = None
    clock.advance(15 * 60)
    ticks = source.poll()
    assert source.breaker.state is BreakerState.CLOSED
    aapl = sorted(t.timestamp for t in ticks if t.symbol == "AAPL")
    assert aapl[0] == SESSION_OPEN + timedelta(minutes=20)  # the gap, from the watermark on
    assert aapl[-1] == SESSION_OPEN + timedelta(minutes=35)  # closed by 15:06:35
    assert value(metrics, "finlake_ingestion_yahoo_backfilled_ticks_total") > 0


def test_request_budget_spreads_symbols_over_cycles(yahoo: FakeYahoo, clock: FakeClock) -> None:
    # Three symbols, each new (time-zone probe + chart), and a new pod's first request fetches
    # Yahoo's cookie and crumb: a budget of 6 serves two in the first minute.
    source, metrics = make_source(
        yahoo, clock, symbols=("AAPL", "MSFT", "IBM"), requests_per_minute=6
    )
    assert {t.symbol for t in source.poll()} == {"AAPL", "MSFT"}
    assert value(metrics, "finlake_ingestion_yahoo_budget_exhausted_total") == 1
    clock.advance(61)
    assert "IBM" in {t.symbol for t in source.poll()}


def test_timeouts_are_retried_within_the_cycle(yahoo: FakeYahoo, clock: FakeClock) -> None:
    source, metrics = make_source(yahoo, clock, attempts=3)
    yahoo.fail("AAPL", "timeout", times=2)
    assert {t.symbol for t in source.poll()} == {"AAPL", "MSFT"}
    assert (
        value(metrics, "finlake_ingestion_source_errors_total", source="yahoo", kind="timeout") == 2
    )
    assert source.breaker.state is BreakerState.CLOSED


def test_fetch_raises_only_yahoo_fetch_errors(yahoo: FakeYahoo, clock: FakeClock) -> None:
    client = YahooClient(interval="1m", prepost=False, timeout_s=5, session=yahoo.session())
    yahoo.fail("AAPL", "empty")
    with pytest.raises(YahooFetchError, match="AAPL: bad_response"):
        client.fetch("AAPL", SESSION_OPEN)
    client.start_cycle()  # as each poll does: yfinance cached the bad answer to its probe
    assert client.fetch("AAPL", clock.now + timedelta(hours=1)) == []  # no bars in that range


@pytest.mark.parametrize(
    ("failure", "kind", "said"),
    [("401", "unauthorized", "Invalid Crumb"), ("not_chart", "bad_response", "quoteResponse")],
)
def test_an_answer_without_a_chart_is_an_error_not_an_empty_range(
    yahoo: FakeYahoo,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    failure: str,
    kind: str,
    said: str,
) -> None:
    source, metrics = make_source(yahoo, clock, attempts=1, breaker_failures=2)
    source.confirm(source.poll())
    clock.advance(30)
    yahoo.outage = failure  # yfinance raises the same YFPricesMissingError as for no bars
    assert source.poll() == []
    errors = value(metrics, "finlake_ingestion_source_errors_total", source="yahoo", kind=kind)
    assert errors == 2
    assert value(metrics, "finlake_ingestion_yahoo_requests_total", outcome="empty") == 0
    assert source.breaker.state is BreakerState.OPEN
    details = [r.detail for r in caplog.records if r.getMessage() == "yahoo request failed"]
    assert len(details) == 2
    assert all(said in detail for detail in details)


class SteppingStop(threading.Event):
    """A stop event whose waits move the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        self.clock.advance(timeout or 0.0)
        return False


def test_long_backoff_still_yields_heartbeat_batches(
    yahoo: FakeYahoo, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = make_source(yahoo, clock, poll_interval_s=30)
    monkeypatch.setattr(source.backoff, "next_delay", lambda: 250.0)
    yahoo.fail("AAPL", "429")
    stop = SteppingStop(clock)
    batches = source.batches(stop)
    assert next(batches).ticks == []  # rate limited: nothing this cycle, 250 s until the next
    beats = 0
    for batch in batches:
        if batch.ticks:
            break
        beats += 1
    assert stop.waits == [30.0] * 8 + [10.0]
    assert beats == 8


def test_a_retry_the_budget_cannot_pay_for_still_counts_as_a_failure(
    yahoo: FakeYahoo, clock: FakeClock
) -> None:
    source, metrics = make_source(
        yahoo, clock, requests_per_minute=4, attempts=3, breaker_failures=2
    )
    # Cookie, crumb, AAPL's probe and bars: the first minute's budget. MSFT's two the next.
    for _ in range(2):
        source.confirm(source.poll())
        clock.advance(61)
    yahoo.outage = "timeout"
    assert source.poll() == []  # MSFT: three tries; AAPL: one, and no budget to retry it
    timeouts = value(
        metrics, "finlake_ingestion_source_errors_total", source="yahoo", kind="timeout"
    )
    assert timeouts == 4
    assert len(yahoo.data_requests()) == 3 + 4
    assert source.breaker.consecutive_failures == 2
    assert source.breaker.state is BreakerState.OPEN


def test_http2_stream_errors_are_retried_like_timeouts(yahoo: FakeYahoo, clock: FakeClock) -> None:
    source, metrics = make_source(yahoo, clock, attempts=3)
    yahoo.fail("AAPL", "http2_stream", times=2)
    assert {t.symbol for t in source.poll()} == {"AAPL", "MSFT"}
    assert (
        value(metrics, "finlake_ingestion_source_errors_total", source="yahoo", kind="network") == 2
    )


def test_http2_stream_errors_open_the_breaker(yahoo: FakeYahoo, clock: FakeClock) -> None:
    source, _ = make_source(yahoo, clock, attempts=1, breaker_failures=1)
    yahoo.fail("AAPL", "http2_stream")
    source.poll()
    assert source.breaker.state is BreakerState.OPEN


def test_a_new_symbol_spends_both_its_requests_or_none(yahoo: FakeYahoo, clock: FakeClock) -> None:
    source, metrics = make_source(yahoo, clock, requests_per_minute=5)
    # Cookie, crumb, AAPL's probe and bars leave one request: MSFT's two do not fit.
    assert {t.symbol for t in source.poll()} == {"AAPL"}
    assert value(metrics, "finlake_ingestion_yahoo_budget_exhausted_total") == 1
    assert not yahoo.data_requests("MSFT")
    assert source.budget.remaining() == 1  # nothing spent on MSFT's half


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (CurlECode.HTTP2, "Error in the HTTP2 framing layer"),
        (CurlECode.HTTP2_STREAM, "Stream error in the HTTP/2 framing layer"),
        (CurlECode.PARTIAL_FILE, "end of response with 1200 bytes missing"),
        (CurlECode.COULDNT_RESOLVE_PROXY, "Could not resolve proxy: proxy.example"),
    ],
)
def test_curl_transport_failures_are_unhealthy_network_errors(
    code: CurlECode, message: str
) -> None:
    kind = classify(curl_error(code, message))
    assert kind == "network"
    assert kind in UNHEALTHY
