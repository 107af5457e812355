"""A single-node Trino 476 whose Iceberg catalog is the lake's JDBC catalog (`--with trino`)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from finlake.config import FinlakeSettings
from finlake.errors import ServiceStartError
from finlake.lake.connection import LakeConnection
from finlake.stack.artifacts import TRINO, TRINO_VERSION, ArtifactCache
from finlake.stack.credentials import write_private
from finlake.stack.java import JavaRuntime, find_java

# Trino 476 requires Java 24+ (TrinoSystemRequirements); Temurin 25 is the JDK we run it on.
TRINO_JAVA = 24

_CONFIG = """\
coordinator=true
node-scheduler.include-coordinator=true
http-server.http.port={port}
discovery.uri=http://{host}:{port}
query.max-memory={memory}
query.max-memory-per-node={memory}
plugin.dir={plugins}
catalog.config-dir={catalogs}
http-server.log.path={data}/var/log/http-request.log
"""

_ICEBERG = """\
connector.name=iceberg
iceberg.catalog.type=jdbc
iceberg.jdbc-catalog.catalog-name={catalog_name}
iceberg.jdbc-catalog.driver-class=org.postgresql.Driver
iceberg.jdbc-catalog.connection-url={jdbc_url}
iceberg.jdbc-catalog.connection-user={user}
iceberg.jdbc-catalog.connection-password={password}
iceberg.jdbc-catalog.default-warehouse-dir={warehouse}
iceberg.jdbc-catalog.schema-version=V1
fs.native-s3.enabled=true
s3.endpoint={endpoint}
s3.path-style-access=true
s3.region={region}
s3.aws-access-key={access_key}
s3.aws-secret-key={secret_key}
"""


class TrinoService:
    """Writes Trino's ``etc`` under home, runs the server on a small heap, checks the catalog."""

    name = "trino"
    stop_signal = signal.SIGTERM

    def __init__(
        self, settings: FinlakeSettings, artifacts: ArtifactCache, lake: LakeConnection
    ) -> None:
        self.settings = settings
        self.artifacts = artifacts
        self.lake = lake
        self.root = settings.home.resolve() / "trino"

    @property
    def ports(self) -> list[tuple[int, str]]:
        """Ports to bind, with the setting that moves each."""
        return [(self.settings.trino.port, "FINLAKE_TRINO__PORT")]

    @property
    def address(self) -> str:
        """The coordinator URL."""
        return self.settings.trino.url

    def java(self) -> JavaRuntime:
        """The JDK this service runs on (checked before anything is downloaded)."""
        return find_java(
            minimum=TRINO_JAVA,
            java_home=self.settings.trino.java_home,
            purpose=f"Trino {TRINO_VERSION}",
            setting="FINLAKE_TRINO__JAVA_HOME",
        )

    def check(self) -> None:
        """Raise when no JDK 24+ is installed."""
        self.java()

    def prepare(self) -> list[str]:
        """Write ``etc`` and the plugin folder; return the command that runs the server."""
        java = self.java()
        app = self.artifacts.ensure(TRINO) / "app"
        server = app / f"trino-server-core-{TRINO_VERSION}"
        plugins = self.root / "plugin"
        plugins.mkdir(parents=True, exist_ok=True)
        # Only the Iceberg connector: each loaded plugin costs start-up time and heap.
        link = plugins / "iceberg"
        link.unlink(missing_ok=True)
        link.symlink_to(app / f"trino-iceberg-{TRINO_VERSION}", target_is_directory=True)
        etc = self.root / "etc"
        (etc / "catalog").mkdir(parents=True, exist_ok=True)
        trino = self.settings.trino
        (etc / "config.properties").write_text(
            _CONFIG.format(
                host=trino.host,
                port=trino.port,
                memory=trino.query_max_memory,
                plugins=plugins,
                catalogs=etc / "catalog",
                data=self.root / "data",
            )
        )
        self._write_catalog(etc / "catalog" / f"{trino.catalog}.properties")
        return [
            str(java.executable),
            f"-Xmx{trino.heap}",
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:-OmitStackTraceInFastThrow",
            "-XX:ReservedCodeCacheSize=256M",
            "-XX:+EnableDynamicAgentLoading",
            "-Djdk.attach.allowAttachSelf=true",
            "-Dfile.encoding=UTF-8",
            "-Dnode.environment=finlake",
            "-Dnode.id=finlake-local",
            f"-Dnode.data-dir={self.root / 'data'}",
            f"-Dconfig={etc / 'config.properties'}",
            "-cp",
            f"{server / 'lib'}/*",
            "io.trino.server.TrinoServer",
        ]

    def _write_catalog(self, path: Path) -> None:
        s3 = self.lake.s3
        if s3 is None or s3.endpoint is None or s3.access_key_id is None:
            raise ServiceStartError(
                "the trino profile needs an S3 warehouse with keys; none is configured"
            )
        write_private(
            path,
            _ICEBERG.format(
                catalog_name=self.settings.spark.catalog,
                jdbc_url=self.lake.jdbc_url,
                user=self.lake.user or "",
                password=self.lake.password or "",
                warehouse=self.lake.warehouse,
                endpoint=s3.endpoint,
                region=s3.region,
                access_key=s3.access_key_id,
                secret_key=s3.secret_access_key,
            ),
        )

    def environment(self) -> dict[str, str]:
        """The server's environment."""
        return dict(os.environ)

    def healthy(self) -> bool:
        """Whether the coordinator has finished starting."""
        try:
            response = httpx.get(f"{self.address}/v1/info", timeout=3)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.json().get("starting") is False

    def after_start(self) -> list[str]:
        """Nothing to create: the catalog tables come from PyIceberg before Trino starts."""
        return []

    def diagnose(self, log: list[str]) -> str | None:
        """A one-line reason from the server's log, when it exited during start-up."""
        for line in reversed(log):
            if "Address already in use" in line or "BindException" in line:
                return f"port {self.settings.trino.port} is already in use"
            if "UnsupportedClassVersionError" in line or "requires Java" in line:
                return (
                    f"Trino {TRINO_VERSION} needs Java {TRINO_JAVA}+; set FINLAKE_TRINO__JAVA_HOME"
                )
            if "OutOfMemoryError" in line:
                heap = self.settings.trino.heap
                return f"Trino ran out of heap; raise FINLAKE_TRINO__HEAP (now {heap})"
            if "Configuration errors" in line or "Error injecting" in line:
                return line.strip()[:300]
        return None
