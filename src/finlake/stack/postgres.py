"""The local PostgreSQL server holding the shared Iceberg JDBC catalog (`--with trino`)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg2

from finlake.config import FinlakeSettings
from finlake.errors import ServiceStartError, StackError
from finlake.lake.connection import LakeConnection
from finlake.stack.credentials import LocalCredentials

POSTGRES_ROOT = Path("/usr/lib/postgresql")
# PostgreSQL refuses to run as root; in a user namespace root's files look owned by this uid.
NAMESPACE_UID = 1000


class PostgresService:
    """Initialises (once), starts and checks the catalog database server."""

    name = "postgres"
    # Fast shutdown: SIGTERM ("smart") would wait for every client to disconnect.
    stop_signal = signal.SIGINT

    def __init__(
        self,
        settings: FinlakeSettings,
        credentials: LocalCredentials,
        lake: LakeConnection | None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.lake = lake
        self.root = settings.home.resolve() / "postgres"
        self.data = self.root / "data"

    @property
    def ports(self) -> list[tuple[int, str]]:
        """Ports to bind, with the setting that moves each."""
        return [(self.settings.postgres.port, "FINLAKE_POSTGRES__PORT")]

    @property
    def address(self) -> str:
        """Where the catalog database is."""
        postgres = self.settings.postgres
        return f"postgresql://{postgres.host}:{postgres.port}/{postgres.database}"

    @property
    def jdbc_url(self) -> str:
        """The catalog database as a JDBC URL."""
        postgres = self.settings.postgres
        return f"jdbc:postgresql://{postgres.host}:{postgres.port}/{postgres.database}"

    def check(self) -> None:
        """Raise when no PostgreSQL server binaries are installed."""
        self.binary("postgres")

    def binary(self, program: str) -> Path:
        """A PostgreSQL program from the configured or newest installed version."""
        configured = self.settings.postgres.bin_dir
        if configured is not None:
            folders = [configured]
        else:
            found = POSTGRES_ROOT.glob("*/bin") if POSTGRES_ROOT.is_dir() else []
            folders = sorted(found, key=lambda path: int(path.parent.name), reverse=True)
        for folder in folders:
            if (folder / program).exists():
                return folder / program
        raise StackError(
            f"PostgreSQL server binaries ({program}) not found in "
            f"{configured or POSTGRES_ROOT / '*/bin'}; run `apt-get install postgresql` "
            "or set FINLAKE_POSTGRES__BIN_DIR"
        )

    def prepare(self) -> list[str]:
        """Create the cluster on first start; return the command that runs the server."""
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        postgres = self.settings.postgres
        return [
            *_as_non_root(),
            str(self.binary("postgres")),
            "-D",
            str(self.data),
            "-p",
            str(postgres.port),
            "-c",
            f"listen_addresses={postgres.host}",
            # TCP only: a socket path under a deep $FINLAKE_HOME can exceed the 107-byte limit.
            "-c",
            "unix_socket_directories=",
            "-c",
            "shared_buffers=32MB",
            "-c",
            "max_connections=40",
        ]

    def _initdb(self) -> None:
        if self.data.exists() and any(self.data.iterdir()):
            raise StackError(
                f"{self.data} has files but no PG_VERSION (corrupt); move it away or run "
                "`finlake stack reset postgres` to start empty"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        password_file = self.root / ".initdb-password"
        descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.credentials.postgres_password)
        try:
            done = subprocess.run(
                [
                    *_as_non_root(),
                    str(self.binary("initdb")),
                    "-D",
                    str(self.data),
                    "-U",
                    self.settings.postgres.user,
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        finally:
            password_file.unlink(missing_ok=True)
        if done.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ServiceStartError(f"initdb in {self.data} failed: {last[0]}")

    def environment(self) -> dict[str, str]:
        """The server's environment."""
        return dict(os.environ)

    def _connect(self, database: str) -> psycopg2.extensions.connection:
        postgres = self.settings.postgres
        return psycopg2.connect(
            host=postgres.host,
            port=postgres.port,
            user=postgres.user,
            password=self.credentials.postgres_password,
            dbname=database,
            connect_timeout=3,
        )

    def healthy(self) -> bool:
        """Whether the server accepts an authenticated connection."""
        try:
            self._connect("postgres").close()
        except psycopg2.Error:
            return False
        return True

    def after_start(self) -> list[str]:
        """Create the catalog database and Iceberg's catalog tables; return what was created."""
        database = self.settings.postgres.database
        created = []
        connection = self._connect("postgres")
        try:
            # CREATE DATABASE cannot run inside a transaction.
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{database}"')
                    created.append(f"database {database}")
        finally:
            connection.close()
        if self.lake is not None:
            # Trino's JDBC catalog needs the tables to exist; PyIceberg creates them (schema V1).
            from pyiceberg.catalog.sql import SqlCatalog

            SqlCatalog(self.settings.spark.catalog, uri=self.lake.sqlalchemy_url()).engine.dispose()
        return created

    def diagnose(self, log: list[str]) -> str | None:
        """A one-line reason from the server's log, when it exited during start-up."""
        for line in reversed(log):
            if "Address already in use" in line or "could not bind" in line:
                return f"port {self.settings.postgres.port} is already in use"
            if "cannot be run as root" in line or "unshare" in line:
                return (
                    "PostgreSQL refuses to run as root and no user namespace is available; "
                    "run finlake as an unprivileged user"
                )
        return None


def _as_non_root() -> list[str]:
    # `unshare --user` execs the program (same pid) with a non-zero uid inside a new user namespace,
    # so the postmaster's root check passes while the files stay root's.
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        raise StackError(
            "PostgreSQL refuses to run as root and `unshare` (util-linux) is missing; "
            "run finlake as an unprivileged user"
        )
    return [unshare, "--user", f"--map-user={NAMESPACE_UID}", f"--map-group={NAMESPACE_UID}"]
