from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from finlake.errors import PortInUseError
from finlake_ingestion.health import Probes, StatusServer


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def test_probes_and_metrics_over_http() -> None:
    now = [0.0]
    probes = Probes(stale_after_s=10, clock=lambda: now[0])
    registry = CollectorRegistry()
    Counter("finlake_test_things", "Things.", registry=registry).inc(3)
    server = StatusServer("127.0.0.1", 0, probes, registry).start()
    try:
        assert get(server.port, "/healthz") == (200, "ok\n")
        assert get(server.port, "/readyz") == (503, "not ready\n")
        probes.ready_check = lambda: True
        assert get(server.port, "/readyz") == (200, "ready\n")
        now[0] = 11
        assert get(server.port, "/healthz")[0] == 503
        probes.beat()
        assert get(server.port, "/healthz")[0] == 200
        status, body = get(server.port, "/metrics")
        assert status == 200
        assert "finlake_test_things_total 3.0" in body
        assert get(server.port, "/nope")[0] == 404
    finally:
        server.stop()


def test_a_port_in_use_is_a_one_line_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"^127.0.0.1:{port} is already in use; pick"):
            StatusServer("127.0.0.1", port, Probes(stale_after_s=10), CollectorRegistry())
