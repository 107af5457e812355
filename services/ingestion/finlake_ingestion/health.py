"""``/healthz``, ``/readyz`` and ``/metrics`` on a small threaded HTTP server."""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from finlake.errors import ConfigurationError, FinlakeError, PortInUseError


class Probes:
    """What the probes report: a heartbeat from the work loop and a readiness check."""

    def __init__(self, stale_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._beat = clock()
        self.ready_check: Callable[[], bool] | None = None

    def is_ready(self) -> bool:
        """Whether the service can publish (the publisher exists and the broker answers)."""
        return self.ready_check is not None and self.ready_check()

    def beat(self) -> None:
        """The work loop is alive."""
        self._beat = self._clock()

    def is_alive(self) -> bool:
        """Whether the work loop beat recently enough."""
        return self._clock() - self._beat <= self.stale_after_s


class StatusServer:
    """Serves the probes and the metrics registry from a daemon thread."""

    def __init__(self, host: str, port: int, probes: Probes, registry: CollectorRegistry) -> None:
        handler = _handler(probes, registry)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as error:
            raise _cannot_listen(host, port, error) from error
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="status-http", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful when 0 was asked for)."""
        return int(self._server.server_address[1])

    def start(self) -> StatusServer:
        """Start serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _cannot_listen(host: str, port: int, error: OSError) -> FinlakeError:
    """The one-line error for a status port that cannot be bound (the CLI prints it as is)."""
    if error.errno == errno.EADDRINUSE:
        return PortInUseError(
            f"{host}:{port} is already in use; pick another port with --port or "
            "FINLAKE_INGESTION__HTTP_PORT"
        )
    return ConfigurationError(f"cannot serve /healthz on {host}:{port}: {error.strerror or error}")


def _handler(probes: Probes, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                alive = probes.is_alive()
                self._reply(200 if alive else 503, b"ok\n" if alive else b"stalled\n")
            elif path == "/readyz":
                ready = probes.is_ready()
                self._reply(200 if ready else 503, b"ready\n" if ready else b"not ready\n")
            else:
                self._reply(404, b"not found\n")

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Probes hit this every few seconds; the default handler writes each to stderr.
            pass

    return Handler
