"""The Yahoo poller: budgeted, breaker-guarded cycles that publish each closed bar once."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

from finlake.contracts.models import MarketTick
from finlake_ingestion.config import YahooSettings
from finlake_ingestion.dedupe import SeenTicks
from finlake_ingestion.metrics import IngestionMetrics
from finlake_ingestion.resilience import Backoff, BreakerState, CircuitBreaker, RequestBudget
from finlake_ingestion.sources.base import Batch
from finlake_ingestion.yahoo_client import (
    BAR_LIMITS,
    BAR_SIZES,
    HISTORY_MARGIN,
    UNHEALTHY,
    RequestRefused,
    YahooClient,
    YahooFetchError,
)

log = logging.getLogger(__name__)
OVERLAP_BARS = 5  # each request re-reads a few bars, in case Yahoo filled one in late
RETRYABLE = frozenset({"timeout", "network", "bad_response", "server_error"})
RETRY_WAIT_MAX_S = 10.0  # retries inside a cycle stay short; longer waits happen between cycles
Window = tuple[datetime, datetime | None]  # start, end (None: now)


class YahooSource:
    """Polls Yahoo every ``poll_interval_s`` for every symbol, as the budget and breaker allow.

    A cycle ends early on a stop (no request goes out after it) and once it has run for a poll
    interval (the symbols left go first next cycle); ``heartbeat`` is called on every request,
    so a cycle slow with timeouts still shows the service alive.
    """

    name = "yahoo"

    def __init__(
        self,
        settings: YahooSettings,
        client: YahooClient,
        metrics: IngestionMetrics,
        *,
        state_file: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        heartbeat: Callable[[], object] = lambda: None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self.state_file = state_file
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._heartbeat = heartbeat
        self._stop = threading.Event()  # batches() hands in the service's
        self._deadline = math.inf
        client.on_request = self._sending
        self.bar = BAR_SIZES[settings.interval]
        limits = BAR_LIMITS[settings.interval]
        self.max_history = limits.history - HISTORY_MARGIN
        self.per_request = limits.per_request
        overlap = self.bar * OVERLAP_BARS
        self.seen = SeenTicks.load(state_file, overlap) if state_file else SeenTicks(overlap)
        self.budget = RequestBudget(settings.requests_per_minute, 60.0, monotonic)
        state_metric = metrics.breaker.labels(self.name)
        self.breaker = CircuitBreaker(
            failures=settings.breaker_failures,
            reset_s=settings.breaker_reset_s,
            max_reset_s=settings.breaker_max_reset_s,
            clock=monotonic,
            on_change=lambda state: state_metric.state(state.value),
        )
        self.backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s)
        self._queue = deque(dict.fromkeys(s.upper() for s in settings.symbols))
        self._parked: dict[str, datetime] = {}
        self._lost_until: dict[str, datetime] = {}
        self._fetched_at: dict[str, datetime] = {}
        # How late a bar is published in normal running: a cycle, the cycle's own duration, and
        # a bar of slack for Yahoo serving it late. Later than that, a gap held it back.
        self.on_time = timedelta(seconds=2 * settings.poll_interval_s) + self.bar
        self.next_delay_s = settings.poll_interval_s

    def prepare(self) -> None:
        """Nothing to check before the first poll (symbols come validated from settings)."""

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        """Poll until ``stop`` is set: one batch per cycle (maybe empty), confirmed on delivery."""
        self._stop = stop
        self._sleep = stop.wait  # a retry wait ends early on SIGTERM
        while not stop.is_set():
            yield Batch(self.poll(), confirm=self.confirm)
            waited = 0.0
            while waited < self.next_delay_s:
                step = min(self.settings.poll_interval_s, self.next_delay_s - waited)
                if stop.wait(step):
                    return
                waited += step
                if waited < self.next_delay_s:
                    yield Batch([])  # nothing to send; keeps /healthz fresh through long backoffs

    def start_for(self, symbol: str, now: datetime) -> datetime:
        """Where the next request for ``symbol`` starts: the watermark, minus a small overlap."""
        oldest = now - self.max_history
        latest = self.seen.latest(symbol)
        if latest is None:
            return max(now - timedelta(seconds=self.settings.lookback_s), oldest)
        wanted = latest - self.seen.overlap
        if wanted < oldest:
            self._count_lost(symbol, wanted, oldest)
        return max(wanted, oldest)

    def windows(self, start: datetime, now: datetime) -> list[Window]:
        """The requests that cover ``start`` to now, each within Yahoo's span per request."""
        windows: list[Window] = []
        while now - start > self.per_request:
            windows.append((start, start + self.per_request))
            start += self.per_request
        return [*windows, (start, None)]

    def _count_lost(self, symbol: str, wanted: datetime, oldest: datetime) -> None:
        # Count each lost second once, however many cycles the symbol stays behind.
        counted = self._lost_until.get(symbol)
        lost = (oldest - max(wanted, counted or wanted)).total_seconds()
        if lost > 0:
            self.metrics.backfill_truncated.inc(lost)
        self._lost_until[symbol] = oldest
        if counted is None:
            log.warning(
                "gap older than Yahoo's intraday history; part of it cannot be backfilled",
                extra={"symbol": symbol, "lost_from": wanted.isoformat(), "lost_s": lost},
            )

    def poll(self) -> list[MarketTick]:
        """One cycle over the symbols; returns the closed bars not published before."""
        self.client.start_cycle()
        now = self._clock()
        self._deadline = self._monotonic() + self.settings.poll_interval_s
        fresh: list[MarketTick] = []
        served, rate_limited = 0, False
        for symbol in list(self._queue):
            if self._stop.is_set():
                break
            if self._monotonic() >= self._deadline:
                self._overran(len(self._queue) - served)
                break
            if not self.breaker.allows():
                log.info("circuit breaker open: the rest of the cycle is skipped")
                break
            if self._parked.get(symbol, now) > now:
                served += 1
                continue
            windows = self.windows(self.start_for(symbol, now), now)
            # All of a symbol's requests or none: a backfill cut short is fetched again whole.
            # yfinance first probes a new symbol's time zone.
            planned = len(windows) + (1 if self.client.is_new(symbol) else 0)
            if not self.budget.allows(planned):
                self.metrics.budget_exhausted.inc()
                log.info("request budget used up; the rest waits for the next cycle")
                break
            try:
                ticks = [tick for window in windows for tick in self._fetch(symbol, *window)]
            except RequestRefused:
                break
            except YahooFetchError as error:
                served += 1
                rate_limited = self._failed(error, now) or rate_limited
                if rate_limited:
                    break
                continue
            served += 1
            self.breaker.record_success()
            self.metrics.yahoo_requests.labels("ok" if ticks else "empty").inc()
            fresh.extend(self._new_closed_bars(symbol, ticks, now))
            self._fetched_at[symbol] = now
        self._queue.rotate(-served)
        self._plan_next(rate_limited)
        return fresh

    def _overran(self, left: int) -> None:
        self.metrics.cycle_overruns.inc()
        log.warning(
            "poll cycle ran past its deadline; the symbols left wait for the next cycle",
            extra={"deadline_s": self.settings.poll_interval_s, "symbols_left": left},
        )

    def _sending(self) -> None:
        # Every HTTP request yfinance sends, cookie, crumb and its own repeats included, is
        # charged and shows the service alive; none goes out once the service is stopping.
        if self._stop.is_set():
            raise RequestRefused("stopping: no more requests to Yahoo")
        self.budget.spend()
        self._heartbeat()

    def _fetch(self, symbol: str, start: datetime, end: datetime | None) -> list[MarketTick]:
        """One request's bars; timeouts and bad responses are retried (full jitter, budgeted)."""
        retrying = Retrying(
            stop=self._stop_retrying,
            wait=wait_random_exponential(
                multiplier=self.settings.backoff_base_s, max=RETRY_WAIT_MAX_S
            ),
            retry=retry_if_exception(
                lambda error: isinstance(error, YahooFetchError) and error.kind in RETRYABLE
            ),
            before_sleep=lambda state: self._retrying(symbol, state.outcome),
            sleep=self._pause,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self.client.fetch(symbol, start, end)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _stop_retrying(self, state: RetryCallState) -> bool:
        # Without budget or time, the last failure is re-raised as it is and the breaker counts
        # it: an empty budget or a stop says nothing about Yahoo, the timeout before it does.
        if state.attempt_number >= self.settings.attempts or self._stop.is_set():
            return True
        if self._monotonic() >= self._deadline:
            log.info("poll cycle past its deadline; the failed request is not retried")
            return True
        if self.budget.allows():
            return False
        log.info("request budget used up; the failed request is not retried this cycle")
        return True

    def _pause(self, seconds: float) -> None:
        self._sleep(seconds)

    def _retrying(self, symbol: str, outcome: object) -> None:
        error = getattr(outcome, "exception", lambda: None)()
        if isinstance(error, YahooFetchError):
            self.metrics.source_errors.labels(self.name, error.kind).inc()
            self.metrics.yahoo_requests.labels("error").inc()
            log.info("retrying yahoo request", extra={"symbol": symbol, "kind": error.kind})

    def _new_closed_bars(
        self, symbol: str, ticks: list[MarketTick], now: datetime
    ) -> list[MarketTick]:
        # The newest bar is still filling up until its interval has passed: publish it next time.
        closed = [tick for tick in ticks if tick.timestamp + self.bar <= now]
        fresh = self.seen.fresh(closed)
        self.metrics.duplicates.labels(self.name).inc(len(closed) - len(fresh))
        self._count_backfilled(symbol, fresh, now)
        return fresh

    def _count_backfilled(self, symbol: str, fresh: list[MarketTick], now: datetime) -> None:
        # Backfilled: a bar that closed after the symbol's previous successful request (after its
        # watermark, on the first request since a restart) and long enough ago that a poll on
        # schedule would have published it. A new symbol's lookback is history, not a gap; a bar
        # Yahoo filled in late or one re-sent after a failed delivery closed before that request.
        previous = self._fetched_at.get(symbol)
        if previous is None:
            latest = self.seen.latest(symbol)
            if latest is None:
                return
            previous = latest + self.bar
        due = now - self.on_time
        late = sum(1 for tick in fresh if previous < tick.timestamp + self.bar <= due)
        self.metrics.backfilled.inc(late)

    def _failed(self, error: YahooFetchError, now: datetime) -> bool:
        kind = error.kind
        self._error(error.symbol, kind, error.detail)
        self.metrics.yahoo_requests.labels(
            "rate_limited" if kind == "rate_limited" else "error"
        ).inc()
        if kind == "unknown_symbol":
            self._parked[error.symbol] = now + timedelta(
                seconds=self.settings.unknown_symbol_retry_s
            )
        if kind in UNHEALTHY:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()  # Yahoo answered; the request itself was the problem
        if kind == "rate_limited":
            self.metrics.yahoo_rate_limited.inc()
            return True
        return False

    def _error(self, symbol: str, kind: str, detail: str) -> None:
        self.metrics.source_errors.labels(self.name, kind).inc()
        log.warning(
            "yahoo request failed", extra={"symbol": symbol, "kind": kind, "detail": detail}
        )

    def _plan_next(self, rate_limited: bool) -> None:
        delay = self.settings.poll_interval_s
        if rate_limited:
            delay = max(delay, self.backoff.next_delay())
        elif self.breaker.state is BreakerState.CLOSED:
            self.backoff.reset()
        self.next_delay_s = max(delay, self.breaker.seconds_until_probe())

    def confirm(self, delivered: list[MarketTick]) -> None:
        """The broker has these: never publish them again, here or after a restart."""
        if not delivered:
            return
        self.seen.mark(delivered)
        if self.state_file is not None:
            self.seen.save(self.state_file)
