"""``finlake stack``: bring the local services up idempotently, report on them, stop them."""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from finlake.config import FinlakeSettings
from finlake.errors import ServiceStartError, StackError
from finlake.lake.connection import (
    TRINO_PROFILE,
    LakeConnection,
    forget_profile,
    read_profile,
    write_profile,
)
from finlake.stack.artifacts import BUNDLES, TRINO_BUNDLES, ArtifactCache
from finlake.stack.credentials import local_credentials
from finlake.stack.kafka import KafkaService
from finlake.stack.postgres import PostgresService
from finlake.stack.process import ManagedProcess, ensure_port_free, exclusive
from finlake.stack.registry import RegistryService
from finlake.stack.seaweedfs import SeaweedService
from finlake.stack.trino import TrinoService

PROFILES = (TRINO_PROFILE,)


class Service(Protocol):
    """What the stack needs from each service it runs."""

    name: str
    stop_signal: signal.Signals

    @property
    def ports(self) -> list[tuple[int, str]]: ...
    @property
    def address(self) -> str: ...
    def check(self) -> None: ...
    def prepare(self) -> list[str]: ...
    def environment(self) -> dict[str, str]: ...
    def healthy(self) -> bool: ...
    # Idempotent: runs after every `up`, also on a service an interrupted `up` left running.
    def after_start(self) -> list[str]: ...
    def diagnose(self, log: list[str]) -> str | None: ...


@dataclass(frozen=True)
class ServiceStatus:
    """One row of ``finlake stack status``."""

    name: str
    state: str
    pid: int | None
    address: str
    since: str | None
    healthy: bool
    log: Path


Report = Callable[[str], None]


def _quiet(_: str) -> None:
    """Report nothing."""


class Stack:
    """The local stack under one ``$FINLAKE_HOME``: the core services plus the recorded profile."""

    def __init__(self, settings: FinlakeSettings, *, with_profile: str | None = None) -> None:
        if with_profile is not None and with_profile not in PROFILES:
            raise StackError(f"no profile {with_profile!r}; known: {', '.join(PROFILES)}")
        self.settings = settings
        self.home = settings.home.resolve()
        self.artifacts = ArtifactCache(
            settings.stack.cache_dir, settings.stack.maven, settings.stack.maven_mirror
        )
        recorded = read_profile(self.home)
        self.profile = with_profile or (recorded[0] if recorded else None)
        self.bundles = BUNDLES + (TRINO_BUNDLES if self.profile == TRINO_PROFILE else ())
        self.services: list[Service] = [
            KafkaService(settings, self.artifacts),
            RegistryService(settings, self.artifacts),
        ]
        if self.profile == TRINO_PROFILE:
            self.lake = recorded[1] if recorded and with_profile is None else self._trino_lake()
            credentials = local_credentials(self.home)
            self.services += [
                PostgresService(settings, credentials, self.lake),
                SeaweedService(settings, credentials),
                TrinoService(settings, self.artifacts, self.lake),
            ]

    def _trino_lake(self) -> LakeConnection:
        credentials = local_credentials(self.home)
        postgres = PostgresService(self.settings, credentials, None)
        store = SeaweedService(self.settings, credentials)
        return LakeConnection(
            jdbc_url=postgres.jdbc_url,
            warehouse=f"s3://{self.settings.object_store.bucket}/warehouse",
            user=self.settings.postgres.user,
            password=credentials.postgres_password,
            s3=store.s3,
        )

    def process(self, service: Service) -> ManagedProcess:
        """The managed process of ``service``."""
        return ManagedProcess(service.name, self.home)

    def service(self, name: str) -> Service:
        """The service called ``name``."""
        for service in self.services:
            if service.name == name:
                return service
        known = ", ".join(service.name for service in self.services)
        raise StackError(f"no service {name!r} in the stack; known: {known}")

    def _locked(self, report: Report) -> contextlib.AbstractContextManager[None]:
        """Hold the home's stack lock: two `up`s at once would both start each service, and the
        second's pid file would hide the first's process from `down`."""
        lock = self.home / "run" / "stack.lock"
        return exclusive(
            lock,
            waiting=lambda: report(
                f"waiting for another `finlake stack` command on {self.home} to finish "
                f"(it holds {lock})"
            ),
        )

    def up(self, report: Report = _quiet) -> None:
        """Start what is not running (restarting crashed services); a no-op when all are up."""
        with self._locked(report):
            self._up(report)

    def _up(self, report: Report) -> None:
        for service in self.services:
            service.check()
            # Every port first, so a clash fails before anything starts (not minutes in).
            if self.process(service).running() is None:
                for port, setting in service.ports:
                    ensure_port_free("127.0.0.1", port, service=service.name, setting=setting)
        for bundle in self.bundles:
            problems = self.artifacts.problems(bundle)
            if problems:
                report(f"{bundle.name}: fetching from Maven Central ({problems[0]})")
                self.artifacts.ensure(bundle, report=report)
        if self.profile == TRINO_PROFILE:
            path = write_profile(self.home, TRINO_PROFILE, self.lake)
            report(f"profile {TRINO_PROFILE}: Spark, PyIceberg and Trino share the lake ({path})")
        for service in self.services:
            self._up_one(service, report)

    def _up_one(self, service: Service, report: Report) -> None:
        process = self.process(service)
        if process.running() is not None:
            healthy = service.healthy()
            if not healthy:
                self._wait_healthy(service, process)
            # An `up` interrupted after the start left the topics (or the like) to this one.
            created = service.after_start()
            state = "already running" if healthy else "running"
            report(f"{service.name}: {state} at {service.address}" + _created(created))
            return
        if process.was_started():
            report(f"{service.name}: was started but is not running (crashed?); restarting")
        for port, setting in service.ports:
            ensure_port_free("127.0.0.1", port, service=service.name, setting=setting)
        command = service.prepare()
        process.start(command, env=service.environment(), cwd=self.home)
        started = time.monotonic()
        self._wait_healthy(service, process)
        created = service.after_start()
        report(
            f"{service.name}: started at {service.address} in {time.monotonic() - started:.1f}s"
            + _created(created)
        )

    def _wait_healthy(self, service: Service, process: ManagedProcess) -> None:
        deadline = time.monotonic() + self.settings.stack.start_timeout_s
        while time.monotonic() < deadline:
            if service.healthy():
                return
            if process.exited():
                log = process.log_since_start(200)
                process.pid_file.unlink(missing_ok=True)
                reason = service.diagnose(log) or _last_error(log)
                raise ServiceStartError(
                    f"{service.name} exited during start-up: {reason} (log: {process.log_file})"
                )
            time.sleep(0.5)
        process.stop(self.settings.stack.stop_grace_s, service.stop_signal)
        raise ServiceStartError(
            f"{service.name} did not answer within {self.settings.stack.start_timeout_s:.0f}s "
            f"(log: {process.log_file}); raise FINLAKE_STACK__START_TIMEOUT_S on a slow machine"
        )

    def down(self, report: Report = _quiet, *, forget: bool = False) -> None:
        """Stop every service, in reverse start order; data stays (``forget``: drop the profile)."""
        with self._locked(report):
            self._down(report, forget=forget)

    def _down(self, report: Report, *, forget: bool) -> None:
        for service in reversed(self.services):
            process = self.process(service)
            started = time.monotonic()
            stopped = process.stop(self.settings.stack.stop_grace_s, service.stop_signal)
            took = time.monotonic() - started
            report(f"{service.name}: {f'stopped in {took:.1f}s' if stopped else 'not running'}")
        if forget and forget_profile(self.home):
            report(f"profile {self.profile}: forgotten; the lake is SQLite + local disk again")

    def status(self) -> list[ServiceStatus]:
        """What runs, where, since when, and whether it answers."""
        rows = []
        for service in self.services:
            process = self.process(service)
            record = process.running()
            if record is not None:
                state = "running"
            else:
                state = "crashed" if process.was_started() else "stopped"
            rows.append(
                ServiceStatus(
                    name=service.name,
                    state=state,
                    pid=record.pid if record else None,
                    address=service.address,
                    since=record.started_at if record else None,
                    healthy=record is not None and service.healthy(),
                    log=process.log_file,
                )
            )
        return rows

    def logs(self, name: str, lines: int) -> list[str]:
        """The last ``lines`` lines of one service's log."""
        return self.process(self.service(name)).log_tail(lines)

    def reset(self, name: str, report: Report = _quiet) -> Path:
        """Delete one stopped service's data (explicit; stopping never deletes)."""
        service = self.service(name)
        with self._locked(report):
            if self.process(service).running() is not None:
                raise StackError(f"{name} is running; run `finlake stack down` first")
            target = self.home / name
            shutil.rmtree(target, ignore_errors=True)
        return target


def _created(created: list[str]) -> str:
    return f"; created {', '.join(created)}" if created else ""


def _last_error(log: list[str]) -> str:
    for line in reversed(log):
        if any(word in line for word in ("ERROR", "Exception", "Error:")):
            return line.strip()[:300]
    return log[-1].strip()[:300] if log else "no output"
