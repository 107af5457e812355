"""One delivery worker (thread and queue) per target, made on the target's first job.

A target is one destination (``Target.key``): one Slack webhook, one list of email recipients,
the dashboard. A webhook answering 500s is retried with backoff for minutes before its jobs are
dead-lettered; with a worker of its own it holds up only its own alerts, never those of the other
webhooks or teams of its channel type. A worker idle for ``worker_idle_s`` ends (recipients come
and go with the alerts' labels: their threads must not pile up); its rate windows stay in the pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from finlake_alerting.channel_worker import ChannelWorker, Job, Outcomes
from finlake_alerting.channels import Sender


class DeliveryPool:
    """The workers of one channel type, one per target key.

    They share the type's sender (so a sender must be thread-safe) and its rate limit, which
    each worker applies to its own target: ``1/second`` for Slack is one message per second per
    webhook. ``submit`` runs on the consume loop's thread, ``pending`` on the HTTP API's too."""

    def __init__(
        self, channel: str, sender: Sender, *, rate_limit: str, outcomes: Outcomes
    ) -> None:
        self.channel = channel
        self.sender = sender
        self.rate_limit = rate_limit
        self.outcomes = outcomes
        self._lock = threading.Lock()
        self._workers: dict[str, ChannelWorker] = {}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._started = False
        self._halted = False

    def start(self) -> DeliveryPool:
        """Start the workers made so far; those made from now on start with their first job."""
        with self._lock:
            if not self._started and not self._halted:
                for worker in self._workers.values():
                    worker.start()
            self._started = True
        return self

    def submit(self, job: Job) -> None:
        """Queue a delivery on its target's worker (made, and started, on the first one).

        After ``halt`` the job only queues: it is not delivered, so its record's offset is not
        committed and the next run reads it again."""
        key = job.target.key
        with self._lock:  # queued under the lock: a worker retires only with nothing queued
            worker = self._workers.get(key)
            if worker is None:
                worker = ChannelWorker(
                    self.channel, key, self.sender, rate_limit=self.rate_limit,
                    outcomes=self.outcomes, limiter=self._limiter, retire=self._retire,
                )  # fmt: skip
                self._workers[key] = worker
                if self._started and not self._halted:
                    worker.start()
            worker.submit(job)

    def _retire(self, worker: ChannelWorker) -> bool:
        """Whether idle ``worker`` may end now: nothing queued, so it leaves the pool."""
        with self._lock:
            if worker.pending or self._halted or self._workers.get(worker.key) is not worker:
                return False
            del self._workers[worker.key]
            return True

    def workers(self) -> list[ChannelWorker]:
        """The current workers (a copy: the pool may grow or shrink meanwhile)."""
        with self._lock:
            return list(self._workers.values())

    @property
    def pending(self) -> int:
        """Jobs waiting, summed over the targets."""
        return sum(worker.pending for worker in self.workers())

    def wait_idle(self, deadline: float) -> None:
        """Let the running workers finish their queues, until ``deadline`` (monotonic)."""
        while time.monotonic() < deadline:
            if not any(w.pending and w.is_alive for w in self.workers()):
                return
            time.sleep(0.05)

    def halt(self) -> None:
        """Tell every worker to stop at its next turn or backoff; no worker starts after this."""
        with self._lock:
            self._halted = True
            workers = list(self._workers.values())
        for worker in workers:
            worker.halt()

    def join(self, deadline: float) -> None:
        """Wait, until ``deadline`` (monotonic) at most, for the halted workers to end."""
        for worker in self.workers():
            worker.join(max(0.0, deadline - time.monotonic()))


def stop_pools(pools: Iterable[DeliveryPool], deadline: float) -> None:
    """Let every worker of every pool finish its queue until ``deadline`` (monotonic), stop them
    all, then close each type's sender once; what is left is redelivered by the next run.

    All workers keep delivering while any is waited for, and a worker in the middle of a send
    attempt gets (together with all the others) a second past ``deadline`` to end it."""
    pools = list(pools)
    for pool in pools:
        pool.wait_idle(deadline)
    for pool in pools:
        pool.halt()
    join_by = max(deadline, time.monotonic() + 1.0)
    for pool in pools:
        pool.join(join_by)
    for pool in pools:
        pool.sender.close()
