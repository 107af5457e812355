"""One worker thread and queue per delivery target: group, rate-limit, send with retries, log,
dead-letter.

A slow or failing target (one Slack webhook answering 500s) only holds up its own queue; the other
targets, of its channel type too, keep delivering (``delivery_pool`` makes one worker per target).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from finlake.contracts.models import AlertEvent
from finlake_alerting.channels import DeliveryError, Sender
from finlake_alerting.config import ServiceSettings
from finlake_alerting.credentials import Redactor
from finlake_alerting.dead_letters import DeadLetters
from finlake_alerting.metrics import Metrics
from finlake_alerting.routing import Target
from finlake_alerting.store import StateStore, Status

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One event to deliver to one target; ``origin`` is its (topic, partition, offset)."""

    event: AlertEvent
    target: Target
    payload: bytes | None = None
    origin: tuple[str, int, int] | None = None
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def group(self) -> tuple[str, str]:
        """Jobs with the same group may go out as one message."""
        return self.target.key, self.event.rule


class _Stopping(Exception):
    """The service is shutting down during a backoff: leave the job for the next run."""


class _Unfinished(Exception):
    """Dead-lettering a group stopped part way (Kafka did not acknowledge one): the jobs before
    it are final, ``left`` are to be tried again."""

    def __init__(self, left: list[Job], cause: Exception) -> None:
        super().__init__(str(cause))
        self.left = left


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, _Stopping):
        return False
    return not (isinstance(error, DeliveryError) and error.permanent)


@dataclass(frozen=True)
class Outcomes:
    """Where every worker records and reports what became of its jobs."""

    store: StateStore
    dead_letters: DeadLetters
    metrics: Metrics
    settings: ServiceSettings
    redact: Redactor
    on_done: Callable[[Job], None]
    """Called (from the worker's thread) once a job is delivered or dead-lettered."""


class ChannelWorker:
    """Delivers the jobs of one target (``key``) in order, in its own thread.

    ``channel`` (the channel type) labels the metrics; ``sender`` may be shared with the other
    targets' workers of that type, so it must be thread-safe."""

    def __init__(
        self, channel: str, key: str, sender: Sender, *, rate_limit: str, outcomes: Outcomes,
        limiter: MovingWindowRateLimiter | None = None,
        retire: Callable[[ChannelWorker], bool] = lambda _: False,
    ) -> None:  # fmt: skip
        """``limiter`` keeps the rate windows (a pool's, outliving its workers); ``retire`` is
        asked when the worker has been idle ``settings.worker_idle_s``: True ends the thread."""
        self.channel = channel
        self.key = key
        self.sender = sender
        self.store = outcomes.store
        self.dead_letters = outcomes.dead_letters
        self.metrics = outcomes.metrics
        self.settings = outcomes.settings
        self.redact = outcomes.redact
        self.on_done = outcomes.on_done
        self._rate = parse(rate_limit)
        self._limiter = limiter or MovingWindowRateLimiter(MemoryStorage())
        self._retire = retire
        self._queue: queue.Queue[Job] = queue.Queue()
        self._backlog: deque[Job] = deque()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"deliver-{key}", daemon=True)

    def start(self) -> ChannelWorker:
        """Start the thread."""
        self._thread.start()
        return self

    def submit(self, job: Job) -> None:
        """Queue a delivery (of this worker's target)."""
        self._queue.put(job)
        self.metrics.queued.labels(self.channel).inc()

    @property
    def pending(self) -> int:
        """Jobs waiting (not counting a group being sent or retried)."""
        return self._queue.qsize() + len(self._backlog)

    @property
    def is_alive(self) -> bool:
        """The thread runs."""
        return self._thread.is_alive()

    def halt(self) -> None:
        """Stop at the next turn or backoff; what is left is redelivered by the next run."""
        self._stopping.set()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the thread to end (after ``halt``)."""
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    # -- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        busy_at = time.monotonic()
        while not self._stopping.is_set():
            head = self._next()
            if head is None:
                idle_s = time.monotonic() - busy_at
                if idle_s >= self.settings.worker_idle_s and self._retire(self):
                    return
                continue
            busy_at = time.monotonic()
            group = [head]
            try:
                self._wait_for_rate(head.target.key)
                group = self._group(head)
                self._deliver(group)
            except _Stopping:
                return
            except Exception as error:  # e.g. Kafka down for a dead letter: keep it, try again
                log.error("target %s: %s", self.key, self.redact(str(error)))
                left = error.left if isinstance(error, _Unfinished) else group
                self._backlog.extendleft(reversed(left))
                self._stopping.wait(1.0)

    def _next(self) -> Job | None:
        if self._backlog:
            return self._backlog.popleft()
        try:
            return self._queue.get(timeout=0.2)
        except queue.Empty:
            return None

    def _wait_for_rate(self, key: str) -> None:
        while not self._limiter.hit(self._rate, self.channel, key):
            reset_at, _ = self._limiter.get_window_stats(self._rate, self.channel, key)
            if self._stopping.wait(min(max(reset_at - time.time(), 0.005), 1.0)):
                raise _Stopping

    def _group(self, head: Job) -> list[Job]:
        # Whatever queued up meanwhile (e.g. while rate-limited) joins the head's message.
        while True:
            try:
                self._backlog.append(self._queue.get_nowait())
            except queue.Empty:
                break
        group, rest = [head], deque[Job]()
        while self._backlog:
            job = self._backlog.popleft()
            if job.group == head.group and len(group) < self.settings.group_max:
                group.append(job)
            else:
                rest.append(job)
        self._backlog = rest
        return group

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise _Stopping

    def _on_retry(self, state: RetryCallState) -> None:
        self.metrics.retried.labels(self.channel).inc()
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "target %s: attempt %d failed, retrying: %s", self.key, state.attempt_number,
            self.redact(str(error)),
        )  # fmt: skip

    def _deliver(self, group: list[Job]) -> None:
        target = group[0].target
        ids = [job.event.event_id for job in group]
        events = [job.event for job in group]
        attempts = 0
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=wait_exponential(
                multiplier=self.settings.backoff_initial_s, max=self.settings.backoff_max_s
            ),
            retry=retry_if_exception(_is_retryable),
            before_sleep=self._on_retry,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    self.store.mark(ids, target.key, Status.SENDING, attempts=attempts)
                    started = time.perf_counter()
                    try:
                        self.sender.send(events, target)
                    except Exception:
                        self.metrics.failed.labels(self.channel).inc()
                        # Failed, or timed out: retried either way. A receiver that took a
                        # message but answered after the timeout gets it again (at least once:
                        # an alert lost is worse than one twice). Only a crash mid-send leaves
                        # SENDING, in doubt, for the next run to dead-letter.
                        self.store.mark(ids, target.key, Status.FAILED, attempts=attempts)
                        raise
            elapsed = time.perf_counter() - started
        except _Stopping:
            raise
        except Exception as error:
            self._dead_letter(group, f"{type(error).__name__}: {error}", attempts)
            return
        self.store.mark(ids, target.key, Status.DELIVERED, attempts=attempts)
        now = datetime.now(UTC)
        self.metrics.messages.labels(self.channel).inc()
        self.metrics.send_seconds.labels(self.channel).observe(elapsed)
        for job in group:
            self.metrics.sent.labels(self.channel).inc()
            lag = (now - job.event.fired_at).total_seconds()
            self.metrics.latency.labels(self.channel).observe(max(lag, 0.0))
        log.info("delivered", extra={"channel": target.key, "events": ids, "attempts": attempts})
        self._finish(group)

    def _dead_letter(self, group: list[Job], reason: str, attempts: int) -> None:
        """Dead-letter each job; those acknowledged are final even if a later one fails (only
        the rest go back to the queue: none is sent again or dead-lettered twice)."""
        reason = self.redact(reason)
        target = group[0].target
        done: list[Job] = []
        try:
            for job in group:
                dead_letter(self.dead_letters, job, reason, attempts)
                self.store.mark(
                    [job.event.event_id], target.key, Status.DEAD_LETTERED, attempts=attempts,
                    detail=reason,
                )  # fmt: skip
                self.metrics.dead_lettered.labels(self.channel).inc()
                done.append(job)
        except Exception as error:
            raise _Unfinished(group[len(done) :], error) from error
        finally:
            if done:
                log.error(
                    "dead-lettered",
                    extra={"channel": target.key, "events": [j.event.event_id for j in done],
                           "attempts": attempts, "reason": reason},
                )  # fmt: skip
                self._finish(done)

    def _finish(self, group: list[Job]) -> None:
        for job in group:
            self.metrics.queued.labels(self.channel).dec()
            self.on_done(job)


def dead_letter(dead_letters: DeadLetters, job: Job, reason: str, attempts: int) -> None:
    """Send one job's event to the dead-letter topic."""
    payload = job.payload
    if payload is None:  # a notice the service made itself: its JSON is what there is to keep
        payload = job.event.model_dump_json().encode()
    dead_letters.send(
        job.event.event_id, payload, reason, channel=job.target.key, attempts=attempts,
        origin=job.origin,
    )  # fmt: skip
