"""Running a source as a service or a command: metrics, probes, logs, publisher, graceful stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from finlake.errors import ConfigurationError
from finlake_ingestion.config import IngestionSettings
from finlake_ingestion.health import Probes, StatusServer
from finlake_ingestion.metrics import IngestionMetrics
from finlake_ingestion.pacing import parse_pace
from finlake_ingestion.publisher import TickPublisher
from finlake_ingestion.sources.base import TickSource
from finlake_ingestion.sources.replay import ReplaySource
from finlake_ingestion.sources.simulate import SimulateSource, simulated_symbols
from finlake_ingestion.worker import RunReport, run, stop_on_signals

log = logging.getLogger(__name__)
# A source gets the metrics and the liveness heartbeat, for work within a batch that is slow
# but progressing (the work loop beats once per batch).
SourceFactory = Callable[[IngestionMetrics, Callable[[], None]], TickSource]


def yahoo_source(settings: IngestionSettings) -> SourceFactory:
    """The Yahoo poller as configured, keeping its watermarks under ``$FINLAKE_HOME``."""

    def build(metrics: IngestionMetrics, heartbeat: Callable[[], None]) -> TickSource:
        # yfinance pulls in pandas (~2 s): only the yahoo source pays for it, not every command.
        from finlake_ingestion.sources.yahoo import YahooSource
        from finlake_ingestion.yahoo_client import YahooClient

        client = YahooClient(
            interval=settings.yahoo.interval,
            prepost=settings.yahoo.prepost,
            timeout_s=settings.yahoo.request_timeout_s,
            cache_dir=settings.state_dir / "yfinance-cache",
        )
        state = settings.state_dir / f"yahoo-{settings.yahoo.interval}-state.json"
        return YahooSource(settings.yahoo, client, metrics, state_file=state, heartbeat=heartbeat)

    return build


def configured_source(settings: IngestionSettings) -> SourceFactory:
    """The source ``FINLAKE_INGESTION__SOURCE`` names, with its ``FINLAKE_*`` options."""
    options = settings.ingestion
    if options.source == "yahoo":
        return yahoo_source(settings)
    if options.source == "replay":
        if options.replay_file is None:
            raise ConfigurationError("the replay source needs FINLAKE_INGESTION__REPLAY_FILE")
        path, speed = options.replay_file, parse_pace(options.replay_pace)
        return lambda metrics, _: ReplaySource(path, metrics, speed=speed)
    symbols = simulated_symbols(options.simulate_symbols)
    return lambda _metrics, _: SimulateSource(
        symbols, rate=options.simulate_rate, seed=options.simulate_seed
    )


def execute(
    settings: IngestionSettings,
    build_source: SourceFactory,
    *,
    serve: bool,
    stop: threading.Event | None = None,
    metrics: IngestionMetrics | None = None,
    hold: bool = False,
) -> RunReport:
    """Build the source and the publisher, run until done or stopped; serve probes if asked.

    ``hold``: a source that ends (a replay file) leaves the service running, probes and metrics
    served, until it is stopped; as a Kubernetes container, exiting would have it restarted and
    the whole file published again, restart after restart."""
    stop = stop or threading.Event()
    metrics = metrics or IngestionMetrics()
    stale_after = 3 * max(settings.yahoo.poll_interval_s, 10.0)
    probes = Probes(stale_after_s=stale_after)
    source = build_source(metrics, probes.beat)
    source.prepare()
    server = None
    if serve:
        options = settings.ingestion
        server = StatusServer(
            options.http_host, options.http_port, probes, metrics.registry
        ).start()
        log.info("serving /healthz /readyz /metrics", extra={"port": server.port})
    try:
        with stop_on_signals(stop):
            publisher = TickPublisher(
                settings, metrics, topic=settings.ingestion.topic, source=source.name
            )
            probes.ready_check = publisher.is_connected
            report = run(
                source,
                publisher,
                stop=stop,
                probes=probes,
                flush_timeout_s=settings.ingestion.flush_timeout_s,
            )
            if hold and not report.stopped:
                # Failed records too: a restart would publish the whole file again to retry them.
                (log.error if report.failed else log.info)(
                    "the source has ended: idle until stopped",
                    extra={"sent": report.sent, "failed": report.failed},
                )
                while not stop.wait(probes.stale_after_s / 3):
                    probes.beat()
            return report
    finally:
        if server is not None:
            server.stop()
