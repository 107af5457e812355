from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from finlake.errors import PortInUseError
from finlake.stack.process import ManagedProcess, ensure_port_free, exclusive
from tests.conftest import hold_lock


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


def _rewrite(process: ManagedProcess, **changes: object) -> None:
    record = json.loads(process.pid_file.read_text())
    record.update(changes)
    process.pid_file.write_text(json.dumps(record))


def test_a_wall_clock_step_does_not_make_a_live_process_look_dead(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path)
    record = process.start(["sleep", "60"], env=dict(os.environ), cwd=tmp_path)
    try:
        # Recorded an hour before the clock was set back: psutil's create_time of the same
        # process (boot time from the wall clock plus ticks) now reads an hour earlier.
        _rewrite(process, create_time=record.create_time + 3600)
        assert process.running() is not None
    finally:
        assert process.stop(grace_s=10)
    with pytest.raises(ProcessLookupError):
        os.kill(record.pid, 0)


def test_a_reused_pid_is_not_taken_for_the_started_process(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path)
    record = process.start(["sleep", "60"], env=dict(os.environ), cwd=tmp_path)
    try:
        assert record.since_boot is not None
        _rewrite(process, since_boot=record.since_boot - 5)
        assert process.running() is None
        _rewrite(process, since_boot=record.since_boot, boot_id="another-boot")
        assert process.running() is None
    finally:
        os.kill(record.pid, signal.SIGKILL)
        process.pid_file.unlink()
        process.stop(grace_s=1)  # reaps our child


def test_a_pid_file_of_the_old_format_is_still_understood(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path)
    record = process.start(["sleep", "60"], env=dict(os.environ), cwd=tmp_path)
    old = {key: getattr(record, key) for key in ("pid", "create_time", "started_at", "command")}
    try:
        process.pid_file.write_text(json.dumps({**old, "create_time": record.create_time - 5}))
        assert process.running() is None  # its start time says: another process
        process.pid_file.write_text(json.dumps(old))
        assert process.running() == record
        # ... and rewritten in the new format on the way.
        assert json.loads(process.pid_file.read_text())["since_boot"] == record.since_boot
    finally:
        assert process.stop(grace_s=10)


def test_failure_hints_read_only_the_latest_start(tmp_path: Path) -> None:
    process = ManagedProcess("short", tmp_path)
    process.log_file.parent.mkdir(parents=True)
    process.log_file.write_text(
        "--- finlake: starting short at 2026-01-01T00:00:00+00:00 ---\nERROR: old failure\n"
    )
    process.start(["echo", "new output"], env=dict(os.environ), cwd=tmp_path)
    deadline = time.monotonic() + 10
    while process.running() is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert process.log_since_start(200) == ["new output"]
    assert "ERROR: old failure" in process.log_tail(200)  # `stack logs` keeps the history


def test_exclusive_says_once_that_it_waits_for_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "run" / "stack.lock"
    said: list[str] = []
    with exclusive(lock, waiting=lambda: said.append("waiting")):
        pass
    assert said == []
    holder = hold_lock(lock, 1.0)
    started = time.monotonic()
    with exclusive(lock, waiting=lambda: said.append("waiting")):
        assert time.monotonic() - started > 0.5  # not before the holder let go
    holder.communicate(timeout=10)
    assert said == ["waiting"]
