"""Background processes, pid files and logs under ``$FINLAKE_HOME``; stop: SIGTERM then SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from finlake.errors import PortInUseError


@dataclass(frozen=True)
class ProcessRecord:
    """What the pid file remembers about a started process.

    ``create_time`` is psutil's: boot time from the wall clock plus the start ticks, so a clock
    step changes it while the process lives. ``since_boot`` and ``boot_id`` identify the process
    whatever the clock does; pid files written before them have only ``create_time``.
    """

    pid: int
    create_time: float
    started_at: str
    command: list[str]
    since_boot: float | None = None
    boot_id: str | None = None


class ManagedProcess:
    """One named background process of the stack."""

    def __init__(self, name: str, home: Path) -> None:
        self.name = name
        self.pid_file = home / "run" / f"{name}.json"
        self.log_file = home / "logs" / f"{name}.log"

    def record(self) -> ProcessRecord | None:
        """The pid file's content, if there is one."""
        try:
            return ProcessRecord(**json.loads(self.pid_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def running(self) -> ProcessRecord | None:
        """The live process's record, or None when it is not running (or its pid was reused)."""
        record = self.record()
        if record is None:
            return None
        _reap(record.pid)
        try:
            process = psutil.Process(record.pid)
            alive = process.is_running() and process.status() != psutil.STATUS_ZOMBIE
            since_boot, boot_id = _start_identity(process)
            if record.since_boot is None:
                # An old pid file: only the wall-clock start time to go by.
                same = abs(process.create_time() - record.create_time) < 1.0
            else:
                same = abs(since_boot - record.since_boot) < 1.0 and (
                    None in (boot_id, record.boot_id) or boot_id == record.boot_id
                )
        except psutil.Error:
            return None
        if not (alive and same):
            return None
        if record.since_boot is None:
            # Rewritten in the new format, so a later clock step cannot make it look dead.
            record = replace(record, since_boot=since_boot, boot_id=boot_id)
            self._write(record)
        return record

    def was_started(self) -> bool:
        """Whether a pid file says this process was started (and not stopped by ``down``)."""
        return self.pid_file.exists()

    def start(self, command: list[str], *, env: dict[str, str], cwd: Path) -> ProcessRecord:
        """Start ``command`` detached, appending its output to the log file."""
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n{START_MARKER} {self.name} at {_now()} ---\n".encode())
            log.flush()
            child = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        # Keep the handle: it reaps the child on exit and spares Popen's "still running" warning.
        _CHILDREN[child.pid] = child
        process = psutil.Process(child.pid)
        since_boot, boot_id = _start_identity(process)
        record = ProcessRecord(
            pid=child.pid,
            create_time=process.create_time(),
            started_at=_now(),
            command=command,
            since_boot=since_boot,
            boot_id=boot_id,
        )
        self._write(record)
        return record

    def _write(self, record: ProcessRecord) -> None:
        # Replaced whole: a reader never sees half a file (and takes the process for dead).
        partial = self.pid_file.with_name(f".{self.pid_file.name}.{os.getpid()}")
        partial.write_text(json.dumps(asdict(record)))
        partial.replace(self.pid_file)

    def exited(self) -> bool:
        """Whether the started process has already died."""
        return self.running() is None

    def stop(self, grace_s: float, stop_signal: signal.Signals = signal.SIGTERM) -> bool:
        """Stop it (``stop_signal``, SIGKILL after ``grace_s``); True if one was running."""
        record = self.running()
        if record is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pid, stop_signal)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and self.running() is not None:
                time.sleep(0.2)
            if self.running() is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(record.pid, signal.SIGKILL)
                while self.running() is not None:
                    time.sleep(0.1)
            # It reads as dead once it is a zombie; our own child is waited for, so no zombie
            # stays behind (the check above may poll it a moment before it died).
            _wait_reaped(record.pid)
        self.pid_file.unlink(missing_ok=True)
        return record is not None

    def log_tail(self, lines: int) -> list[str]:
        """The last ``lines`` lines of the log."""
        return self._tail()[-lines:]

    def log_since_start(self, lines: int) -> list[str]:
        """The last ``lines`` lines the latest start wrote: the log is appended to, so earlier
        runs' errors must not pass for this one's."""
        tail = self._tail()
        starts = [i for i, line in enumerate(tail) if line.startswith(START_MARKER)]
        return tail[starts[-1] + 1 :][-lines:] if starts else tail[-lines:]

    def _tail(self) -> list[str]:
        if not self.log_file.exists():
            return []
        with self.log_file.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 256 * 1024))
            return handle.read().decode(errors="replace").splitlines()


_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
START_MARKER = "--- finlake: starting"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _start_identity(process: psutil.Process) -> tuple[float, str | None]:
    """When ``process`` started, in seconds since boot, and which boot (Linux only; None
    elsewhere). Both of psutil's times add the same wall-clock boot time, which cancels out."""
    since_boot = round(process.create_time() - psutil.boot_time(), 2)
    try:
        boot_id: str | None = BOOT_ID.read_text().strip()
    except OSError:
        boot_id = None
    return since_boot, boot_id


@contextlib.contextmanager
def exclusive(path: Path, *, waiting: Callable[[], None]) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (``flock``: released when the holder dies) within the
    block; when another process holds it, call ``waiting`` once, then wait for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        waiting()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _reap(pid: int) -> None:
    # Our own children stay zombies until waited for; reaping lets a dead child read as dead.
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]


def _wait_reaped(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=10)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def ensure_port_free(host: str, port: int, *, service: str, setting: str) -> None:
    """Raise PortInUseError naming the owner when ``host:port`` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return
        except OSError:
            pass
    raise PortInUseError(
        f"port {port} on {host}, needed by {service}, is already in use by {port_owner(port)}; "
        f"stop that process or set {setting} to a free port"
    )


def port_owner(port: int) -> str:
    """A short description of the process listening on ``port``."""
    with contextlib.suppress(psutil.Error):
        for connection in psutil.net_connections(kind="tcp"):
            if connection.laddr and connection.laddr.port == port and connection.pid:
                with contextlib.suppress(psutil.Error):
                    process = psutil.Process(connection.pid)
                    return f"pid {connection.pid} ({process.name()})"
                return f"pid {connection.pid}"
    return "another process"


def answers_tcp(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
