"""Shared fixtures: tests never touch the developer's ``.finlake`` (each gets its own home)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings, get_settings
from finlake.spark.session import build_session


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``finlake ARGS`` in a subprocess, as a user runs it (wide terminal, captured output)."""
    return subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


# Below Linux's ephemeral range (32768-60999): a port the OS picks there may be taken, before the
# service it was picked for binds it, as the local port of another process's outgoing connection
# (a broker's to its controller did, and the registry could not start).
_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the ephemeral range and
    not handed out before in this process."""
    for _ in range(200):
        port = random.choice(_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORTS.start}-{_PORTS.stop - 1}")


def hold_lock(
    lock: Path, seconds: float, *, then_move: tuple[Path, Path] | None = None
) -> subprocess.Popen[str]:
    """Another process holding ``lock`` (flock) for ``seconds``, moving ``then_move``'s first
    path to its second before it lets go; returns once the lock is held."""
    script = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "if len(sys.argv) > 3:\n"
        "    os.rename(sys.argv[3], sys.argv[4])\n"
    )
    lock.parent.mkdir(parents=True, exist_ok=True)
    moves = [str(path) for path in then_move or ()]
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(lock), str(seconds), *moves],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    return holder


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def artifacts_dir() -> Path:
    """Where screenshots and other test artifacts go (kept after the run)."""
    folder = Path(__file__).parent.parent / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def spark_lake(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SparkSession, FinlakeSettings]]:
    """The one Spark session of the test process (local[1], UTC, UI off) and its lake's settings."""
    settings = FinlakeSettings.model_validate(
        {
            "home": tmp_path_factory.mktemp("spark-lake"),
            "spark": {"master": "local[1]", "shuffle_partitions": 1, "log_level": "ERROR"},
        }
    )
    session = build_session(settings, app_name="finlake-tests")
    yield session, settings
    session.stop()


@pytest.fixture(scope="session")
def spark(spark_lake: tuple[SparkSession, FinlakeSettings]) -> SparkSession:
    """The shared Spark session."""
    return spark_lake[0]
