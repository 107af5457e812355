from __future__ import annotations

import pytest

from finlake_ingestion.resilience import Backoff, BreakerState, CircuitBreaker, RequestBudget


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_allows_limit_per_rolling_window() -> None:
    clock = Ticker()
    budget = RequestBudget(3, 60.0, clock)
    allowed = []
    for _ in range(4):
        allowed.append(budget.allows())
        budget.spend()
    assert allowed == [True, True, True, False]
    assert budget.seconds_until_free() == 60.0
    clock.now = 59.9
    assert not budget.allows()
    clock.now = 60.0
    assert budget.remaining() == 3
    assert budget.allows()


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = Ticker()
    states: list[BreakerState] = []
    breaker = CircuitBreaker(
        failures=3, reset_s=10, max_reset_s=100, clock=clock, on_change=states.append
    )
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allows()
    assert states == [BreakerState.CLOSED, BreakerState.OPEN]


def test_breaker_probe_failure_doubles_the_pause_and_success_closes() -> None:
    clock = Ticker()
    breaker = CircuitBreaker(failures=1, reset_s=10, max_reset_s=25, clock=clock)
    breaker.record_failure()
    assert breaker.seconds_until_probe() == 10
    clock.now = 10
    assert breaker.allows()
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_failure()  # the probe failed
    assert (breaker.state, breaker.pause_s) == (BreakerState.OPEN, 20)
    clock.now = 30
    assert breaker.allows()
    breaker.record_failure()
    assert breaker.pause_s == 25  # capped
    clock.now = 55
    assert breaker.allows()
    breaker.record_success()
    assert (breaker.state, breaker.trips, breaker.pause_s) == (BreakerState.CLOSED, 0, 10)


def test_half_open_probe_failure_reopens_even_below_threshold() -> None:
    clock = Ticker()
    breaker = CircuitBreaker(failures=5, reset_s=1, max_reset_s=10, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now = 1
    assert breaker.allows()
    breaker.consecutive_failures = 0
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


@pytest.mark.parametrize("failures", [0, 1, 3, 8, 20])
def test_backoff_is_full_jitter_under_the_exponential_ceiling(failures: int) -> None:
    delays = []
    for _ in range(200):
        backoff = Backoff(base_s=2, max_s=60)
        backoff.failures = failures
        ceiling = backoff.ceiling()
        delays.append(backoff.next_delay())
        assert 0 <= delays[-1] <= ceiling
    assert ceiling == min(60, 2 * 2**failures)
    assert min(delays) < ceiling / 4 < ceiling / 2 < max(delays)  # spread over the whole range


def test_backoff_reset_starts_from_the_base() -> None:
    backoff = Backoff(base_s=1, max_s=100)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.ceiling() == 1


def test_budget_allows_several_requests_all_or_none() -> None:
    budget = RequestBudget(3, 60.0, Ticker())
    assert budget.allows(2)
    budget.spend(2)
    assert not budget.allows(2)
    assert budget.allows()


def test_more_than_the_whole_budget_fits_an_untouched_one_and_overdraws_it() -> None:
    clock = Ticker()
    budget = RequestBudget(3, 60.0, clock)
    assert budget.allows(5)  # else it would never be sent
    for moment in (0.0, 10.0, 20.0, 30.0, 40.0):
        clock.now = moment
        budget.spend()
    assert budget.remaining() == -2
    assert not budget.allows()
    # One more fits once three of the five have expired: at 80 s.
    assert budget.seconds_until_free() == pytest.approx(40.0)
    clock.now = 79.9
    assert not budget.allows()
    clock.now = 80.0
    assert budget.allows()
