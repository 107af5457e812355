"""``run(settings)``: the alert service and its HTTP API until SIGTERM/SIGINT, then a clean stop."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import uvicorn

from finlake_alerting.api import create_api
from finlake_alerting.config import Settings
from finlake_alerting.service import AlertService

log = logging.getLogger(__name__)


def start_http(
    service: AlertService, host: str, port: int
) -> tuple[uvicorn.Server, threading.Thread]:
    """Serve the API from a daemon thread; returns once it listens."""
    config = uvicorn.Config(
        create_api(service), host=host, port=port, log_level="warning", log_config=None,
        access_log=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="alerting-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the alert service API could not listen on {host}:{port}")
        time.sleep(0.02)
    return server, thread


def run(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT; queued deliveries get the shutdown grace to finish."""
    service = AlertService(settings)
    config = settings.alerting
    server, thread = start_http(service, config.host, config.port)
    log.info("alert service API listening", extra={"url": f"http://{config.host}:{config.port}"})

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        service.stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.should_exit = True
        thread.join(timeout=10)
