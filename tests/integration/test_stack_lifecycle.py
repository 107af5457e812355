"""The life cycle on a second, private stack: up, up again, crash, up, down, bad input."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from confluent_kafka.admin import AdminClient

from finlake.errors import PortInUseError, StackError
from finlake.stack.manager import Stack
from tests.conftest import free_port
from tests.integration.conftest import stack_settings


def _pids(stack: Stack) -> dict[str, int | None]:
    return {row.name: row.pid for row in stack.status()}


def test_up_up_kill_up_down(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)
    # Exported for clients of a remote cluster (here: nothing answers): the stack still checks,
    # fills and stores into its own broker and registry.
    settings = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(
                update={"bootstrap_servers": f"127.0.0.1:{free_port()}"}
            ),
            "registry": settings.registry.model_copy(
                update={"url": f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"}
            ),
        }
    )
    stack = Stack(settings)
    kafka, registry = settings.kafka.local_bootstrap, settings.registry.local_url
    messages: list[str] = []
    try:
        stack.up(report=messages.append)
        first = _pids(stack)
        assert all(row.state == "running" and row.healthy for row in stack.status())
        assert any("created market-data" in message for message in messages)

        # As if the first `up` had been interrupted before it created the topics.
        admin = AdminClient({"bootstrap.servers": kafka})
        admin.delete_topics(["market-data"])["market-data"].result(timeout=30)
        deadline = time.monotonic() + 30
        while "market-data" in admin.list_topics(timeout=10).topics:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        messages.clear()
        stack.up(report=messages.append)
        assert messages[0] == f"kafka: already running at {kafka}; created market-data"

        messages.clear()
        stack.up(report=messages.append)  # a no-op
        assert _pids(stack) == first
        assert messages == [
            f"kafka: already running at {kafka}",
            f"registry: already running at {registry}",
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


def _brokers(home: Path) -> list[int]:
    config = str(home / "kafka" / "server.properties")
    return [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if config in (process.info["cmdline"] or [])
    ]


def test_two_ups_at_once_start_one_broker(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)
    env = {
        **os.environ,
        "COLUMNS": "200",
        "FINLAKE_HOME": str(tmp_path),
        "FINLAKE_KAFKA__PORT": str(settings.kafka.port),
        "FINLAKE_KAFKA__CONTROLLER_PORT": str(settings.kafka.controller_port),
        "FINLAKE_REGISTRY__PORT": str(settings.registry.port),
        "FINLAKE_REGISTRY__MANAGEMENT_PORT": str(settings.registry.management_port),
    }
    command = [sys.executable, "-m", "finlake.cli.main", "stack", "up"]
    ups = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        outputs = [up.communicate(timeout=300) for up in ups]
        assert [up.returncode for up in ups] == [0, 0], outputs
        said = [stdout for stdout, _ in outputs]
        assert sum("waiting for another `finlake stack` command" in out for out in said) == 1
        assert sum("kafka: already running" in out for out in said) == 1
        [broker] = _brokers(tmp_path)
        assert _pids(Stack(settings))["kafka"] == broker
    finally:
        Stack(settings).down()
    assert _brokers(tmp_path) == []
