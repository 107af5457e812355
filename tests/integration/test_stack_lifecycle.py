"""The life cycle on a second, private stack: up, up again, crash, up, down, bad input."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from finlake.errors import PortInUseError, StackError
from finlake.stack.manager import Stack
from tests.integration.conftest import stack_settings


def _pids(stack: Stack) -> dict[str, int | None]:
    return {row.name: row.pid for row in stack.status()}


def test_up_up_kill_up_down(tmp_path: Path) -> None:
    stack = Stack(stack_settings(tmp_path))
    messages: list[str] = []
    try:
        stack.up(report=messages.append)
        first = _pids(stack)
        assert all(row.state == "running" and row.healthy for row in stack.status())
        assert any("created market-data" in message for message in messages)

        messages.clear()
        stack.up(report=messages.append)  # a no-op
        assert _pids(stack) == first
        assert messages == [
            f"kafka: already running at {stack.settings.kafka.bootstrap}",
            f"registry: already running at {stack.settings.registry.ccompat_url}",
        ]

        kafka_pid = first["kafka"]
        assert kafka_pid is not None
        os.kill(kafka_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while stack.status()[0].state != "crashed":
            assert time.monotonic() < deadline
            time.sleep(0.1)

        messages.clear()
        stack.up(report=messages.append)
        restarted = _pids(stack)
        assert restarted["kafka"] not in (None, kafka_pid)
        assert "kafka: was started but is not running (crashed?); restarting" in messages
        assert stack.status()[0].healthy
    finally:
        stack.down()
    assert [(row.state, row.pid) for row in stack.status()] == [("stopped", None)] * 2


def test_corrupt_broker_data_directory_is_one_clear_error(tmp_path: Path) -> None:
    stack = Stack(stack_settings(tmp_path))
    kafka = stack.services[0]
    data = tmp_path / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("cluster.id=someone-elses\nnode.id=7\n")
    with pytest.raises(
        StackError, match=r"data directory .* is corrupt.*finlake stack reset kafka"
    ):
        kafka.prepare()
    stack.reset("kafka")
    assert not data.exists()


def test_port_in_use_stops_up_with_the_owner(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", settings.kafka.port))
        holder.listen()
        with pytest.raises(
            PortInUseError, match=f"port {settings.kafka.port} .* pid {os.getpid()}"
        ):
            Stack(settings).up()
