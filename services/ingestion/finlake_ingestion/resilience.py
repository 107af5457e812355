"""Politeness toward Yahoo: a request budget, a circuit breaker, full-jitter backoff."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from tenacity import RetryCallState, wait_random_exponential

Clock = Callable[[], float]


class RequestBudget:
    """At most ``limit`` requests in any rolling ``window_s`` seconds, counted as they are sent.

    A caller checks ``allows`` before work that sends requests and charges each one it sends with
    ``spend``; work that sends more than it planned overdraws the budget, and what follows waits
    until the overdraft has expired.
    """

    def __init__(self, limit: int, window_s: float = 60.0, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._spent: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0] <= now - self.window_s:
            self._spent.popleft()

    def remaining(self) -> int:
        """Requests still allowed right now (below 0 while overdrawn)."""
        self._expire(self._clock())
        return self.limit - len(self._spent)

    def allows(self, count: int = 1) -> bool:
        """Whether ``count`` more requests fit now; more than the limit fit an untouched budget."""
        return self.remaining() >= min(count, self.limit)

    def spend(self, count: int = 1) -> None:
        """Charge ``count`` requests sent now, whether or not they fit."""
        now = self._clock()
        self._expire(now)
        self._spent.extend([now] * count)

    def seconds_until_free(self) -> float:
        """How long until one more request fits (0 when one fits now)."""
        now = self._clock()
        self._expire(now)
        if len(self._spent) < self.limit:
            return 0.0
        return self._spent[len(self._spent) - self.limit] + self.window_s - now


class BreakerState(StrEnum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; after a pause lets one probe through.

    The pause doubles each time a probe fails (``reset_s`` up to ``max_reset_s``); one success
    closes the breaker and resets the pause.
    """

    def __init__(
        self,
        *,
        failures: int,
        reset_s: float,
        max_reset_s: float,
        clock: Clock = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.threshold = failures
        self.reset_s = reset_s
        self.max_reset_s = max_reset_s
        self._clock = clock
        self._on_change = on_change
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.trips = 0
        self.opened_at = 0.0
        if on_change is not None:
            on_change(self.state)

    @property
    def pause_s(self) -> float:
        """How long the breaker stays open after its latest trip."""
        return float(min(self.max_reset_s, self.reset_s * 2 ** max(self.trips - 1, 0)))

    def _move(self, state: BreakerState) -> None:
        if state is not self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)

    def allows(self) -> bool:
        """Whether a request may go out now (an open breaker turns half-open after its pause)."""
        if self.state is BreakerState.OPEN and self.seconds_until_probe() == 0:
            self._move(BreakerState.HALF_OPEN)
        return self.state is not BreakerState.OPEN

    def seconds_until_probe(self) -> float:
        """How long an open breaker still blocks requests (0 otherwise)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.pause_s - self._clock())

    def record_success(self) -> None:
        """A request succeeded: close, forget failures and trips."""
        self.consecutive_failures = 0
        self.trips = 0
        self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """A request failed: open on the threshold, or at once when it was the half-open probe."""
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or self.consecutive_failures >= self.threshold:
            self.trips += 1
            self.opened_at = self._clock()
            self._move(BreakerState.OPEN)


class Backoff:
    """Full-jitter exponential delays (tenacity's ``wait_random_exponential``) over failures."""

    def __init__(self, base_s: float, max_s: float) -> None:
        self.max_s = max_s
        self.base_s = base_s
        self._wait = wait_random_exponential(multiplier=base_s, max=max_s)
        self.failures = 0

    def ceiling(self) -> float:
        """The upper bound of the next delay: min(max, base * 2 ** failures so far)."""
        return float(min(self.max_s, self.base_s * 2**self.failures))

    def next_delay(self) -> float:
        """Count one more failure and draw a delay uniformly from [0, ceiling]."""
        self.failures += 1
        # The wait strategy reads nothing but attempt_number from the call state.
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = self.failures
        return float(self._wait(state))

    def reset(self) -> None:
        """A success: the next failure starts from the base again."""
        self.failures = 0
