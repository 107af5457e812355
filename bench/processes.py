"""Subprocesses of a benchmark: each in its own process group, always stopped, output to a log."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

Proc = subprocess.Popen[bytes]


def stop(process: Proc, grace_s: float = 30.0) -> None:
    """SIGTERM the process group (a CLI and its JVM), SIGKILL whatever is left after the grace."""
    with suppress(ProcessLookupError):  # raised once the group is empty
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            os.killpg(process.pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                process.poll()  # reap the leader: as a zombie it would keep the group alive
                os.killpg(process.pid, 0)
                time.sleep(0.2)
    process.wait(10)


@contextmanager
def started(command: list[str], env: dict[str, str], log: Path) -> Iterator[Proc]:
    """A process in its own group, output to ``log``; stopped on exit, whatever happens."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            stop(process)
