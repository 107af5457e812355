"""The work loop: pull batches from a source, publish them, flush at the end and on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from finlake.errors import FinlakeError
from finlake_ingestion.health import Probes
from finlake_ingestion.publisher import TickPublisher
from finlake_ingestion.sources.base import TickSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    """What a run did: records sent, delivered, failed, still pending; whether it was stopped."""

    source: str
    sent: int
    delivered: int
    failed: int
    undelivered: int
    seconds: float
    stopped: bool
    errors: tuple[str, ...] = ()


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM and SIGINT while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "stopping: flushing what was produced", extra={"signal": signal.Signals(signum).name}
        )
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(
    source: TickSource,
    publisher: TickPublisher,
    *,
    stop: threading.Event,
    probes: Probes | None = None,
    flush_timeout_s: float = 30.0,
    on_batch: Callable[[int], None] | None = None,
) -> RunReport:
    """Publish every batch of ``source`` until it ends or ``stop`` is set; always flush."""
    started = time.monotonic()
    sent = 0
    try:
        for batch in source.batches(stop):
            publisher.publish(batch)
            sent += len(batch.ticks)
            publisher.poll()
            if probes is not None:
                probes.beat()
            if on_batch is not None:
                on_batch(sent)
    finally:
        undelivered = publisher.flush(flush_timeout_s)
    stats = publisher.stats
    report = RunReport(
        source=source.name,
        sent=sent,
        delivered=stats.delivered,
        failed=stats.failed,
        undelivered=undelivered,
        seconds=time.monotonic() - started,
        stopped=stop.is_set(),
        errors=tuple(stats.errors),
    )
    log.info("run finished", extra={k: v for k, v in vars(report).items() if k != "errors"})
    if undelivered:
        raise FinlakeError(
            f"{undelivered} of {sent} records were still undelivered after {flush_timeout_s:.0f}s"
        )
    return report
