from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from finlake.errors import PortInUseError
from finlake.stack.process import ManagedProcess, ensure_port_free


def test_port_in_use_names_the_owner_and_the_setting() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError) as caught:
            ensure_port_free("127.0.0.1", port, service="kafka", setting="FINLAKE_KAFKA__PORT")
    message = str(caught.value)
    assert f"port {port}" in message
    assert f"pid {os.getpid()}" in message
    assert "FINLAKE_KAFKA__PORT" in message


def test_free_port_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ensure_port_free("127.0.0.1", port, service="kafka", setting="FINLAKE_KAFKA__PORT")


def test_stop_sends_sigterm_first(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path)
    process.start(["sleep", "60"], env=dict(os.environ), cwd=tmp_path)
    assert process.running() is not None
    started = time.monotonic()
    assert process.stop(grace_s=10)
    assert time.monotonic() - started < 5
    assert process.running() is None
    assert not process.pid_file.exists()


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    process = ManagedProcess("stubborn", tmp_path)
    record = process.start(
        ["bash", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"],
        env=dict(os.environ),
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 10
    while "ready" not in process.log_tail(5)[-1:][0] if process.log_tail(5) else True:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert process.stop(grace_s=0.5)
    assert process.running() is None
    with pytest.raises(ProcessLookupError):
        os.kill(record.pid, 0)


def test_a_dead_process_is_not_running_but_was_started(tmp_path: Path) -> None:
    process = ManagedProcess("short", tmp_path)
    process.start(["true"], env=dict(os.environ), cwd=tmp_path)
    deadline = time.monotonic() + 10
    while process.running() is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert process.was_started()
