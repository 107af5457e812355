"""The local Kafka broker: one KRaft node (broker + controller) on loopback."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import uuid
from base64 import urlsafe_b64encode
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from finlake.config import FinlakeSettings
from finlake.contracts.topics import TopicSpec, declared_topics
from finlake.errors import ServiceStartError, StackError
from finlake.stack.artifacts import KAFKA, ArtifactCache
from finlake.stack.java import JavaRuntime, find_java

# StorageTool only writes meta.properties; minutes means the JVM hangs.
FORMAT_TIMEOUT_S = 120.0
# librdkafka logs through Python logging, so its start-up chatter follows the log level.
CLIENT_LOGGER = logging.getLogger("finlake.kafka.client")

_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
"""


class KafkaService:
    """Starts, formats and checks the local broker."""

    name = "kafka"
    stop_signal = signal.SIGTERM

    def __init__(self, settings: FinlakeSettings, artifacts: ArtifactCache) -> None:
        self.settings = settings
        self.artifacts = artifacts
        self.root = settings.home.resolve() / "kafka"
        self.data = self.root / "data"

    @property
    def ports(self) -> list[tuple[int, str]]:
        """Ports to bind, with the setting that moves each."""
        return [
            (self.settings.kafka.port, "FINLAKE_KAFKA__PORT"),
            (self.settings.kafka.controller_port, "FINLAKE_KAFKA__CONTROLLER_PORT"),
        ]

    @property
    def address(self) -> str:
        """Where this broker listens (FINLAKE_KAFKA__BOOTSTRAP_SERVERS, which points clients at
        another cluster, must not send the stack's checks and topic creation there)."""
        return self.settings.kafka.local_bootstrap

    def java(self) -> JavaRuntime:
        """The JDK this service runs on (checked before anything is downloaded)."""
        return find_java(
            minimum=17,
            java_home=self.settings.stack.java_home,
            purpose="the Kafka broker",
            setting="FINLAKE_STACK__JAVA_HOME",
        )

    def check(self) -> None:
        """Raise when no suitable JDK is installed."""
        self.java()

    def prepare(self) -> list[str]:
        """Write the config, format storage on first start; return the command to run the broker."""
        java = self.java()
        classpath = f"{self.artifacts.ensure(KAFKA) / 'lib'}/*"
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "server.properties"
        kafka = self.settings.kafka
        config.write_text(
            _SERVER_PROPERTIES.format(
                host=kafka.host,
                port=kafka.port,
                controller_port=kafka.controller_port,
                data=self.data,
            )
        )
        self._format_once(str(java.executable), classpath, config)
        return [
            str(java.executable),
            f"-Xms{kafka.heap}",
            f"-Xmx{kafka.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(config),
        ]

    def _cluster_id(self) -> str:
        id_file = self.root / "cluster.id"
        if not id_file.exists():
            cluster_id = "-"
            # Kafka's CLI would read an id starting with "-" as an option (Kafka avoids them too).
            while cluster_id.startswith("-"):
                cluster_id = urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            id_file.write_text(cluster_id)
        return id_file.read_text().strip()

    def _format_once(
        self, java: str, classpath: str, config: Path, timeout_s: float = FORMAT_TIMEOUT_S
    ) -> None:
        meta = self.data / "meta.properties"
        cluster_id = self._cluster_id()
        if meta.exists():
            self._check_meta(meta, cluster_id)
            return
        if self.data.exists() and any(self.data.iterdir()):
            raise StackError(
                f"the broker data directory {self.data} has data but no meta.properties (corrupt); "
                "move it away or run `finlake stack reset kafka` to start empty"
            )
        command = [java, "-cp", classpath, "kafka.tools.StorageTool", "format"]
        try:
            done = subprocess.run(
                [*command, "-t", cluster_id, "-c", str(config)],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise ServiceStartError(
                f"formatting Kafka storage in {self.data} did not finish within {timeout_s:g}s "
                "(an overloaded machine or a hung JVM?); run `finlake stack up` again"
            ) from error
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ServiceStartError(f"formatting Kafka storage in {self.data} failed: {last[0]}")

    def _check_meta(self, meta: Path, cluster_id: str) -> None:
        entries = dict(
            line.split("=", 1)
            for line in meta.read_text(errors="replace").splitlines()
            if "=" in line and not line.startswith("#")
        )
        if entries.get("cluster.id") != cluster_id or entries.get("node.id") != "1":
            raise StackError(
                f"the broker data directory {self.data} is corrupt or from another cluster "
                f"({meta.name} says cluster.id={entries.get('cluster.id')!r}); move it away or run "
                "`finlake stack reset kafka` to start empty"
            )

    def environment(self) -> dict[str, str]:
        """The broker's environment."""
        return dict(os.environ)

    def healthy(self) -> bool:
        """Whether the broker answers a metadata request."""
        try:
            AdminClient(self._admin_conf()).list_topics(timeout=3)
        except KafkaException:
            return False
        return True

    def _admin_conf(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.address,
            "socket.timeout.ms": 3000,
            "log_level": 0,
            "logger": CLIENT_LOGGER,
        }

    def after_start(self) -> list[str]:
        """Create the topics the contracts declare; return the names created now."""
        return create_topics(self.address, declared_topics(self.settings.topics))

    def diagnose(self, log: list[str]) -> str | None:
        """A one-line reason from the broker's log, when it exited during start-up."""
        for line in reversed(log):
            if "Address already in use" in line:
                return "a broker port is already in use"
            if (
                "meta.properties" in line
                or "cluster id" in line.lower()
                or "InconsistentClusterId" in line
            ):
                return (
                    f"the broker data directory {self.data} is corrupt; "
                    "run `finlake stack reset kafka` to start empty"
                )
        return None


def require_broker(bootstrap: str, timeout_s: float = 10.0) -> None:
    """Raise a one-line StackError when no broker answers at ``bootstrap``."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": CLIENT_LOGGER}
    try:
        AdminClient(conf).list_topics(timeout=timeout_s)
    except KafkaException as error:
        raise StackError(
            f"no Kafka broker answers at {bootstrap}; start one with `finlake stack up` "
            "(or point FINLAKE_KAFKA__BOOTSTRAP_SERVERS at yours)"
        ) from error


def create_topics(
    bootstrap: str, topics: list[TopicSpec], replication_factor: int = 1
) -> list[str]:
    """Create the missing topics (idempotent); return the names created (``replication_factor``
    -1: the brokers' default)."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": CLIENT_LOGGER}
    admin = AdminClient(conf)
    try:
        existing = set(admin.list_topics(timeout=10).topics)
    except KafkaException as error:
        raise StackError(f"no Kafka broker answers at {bootstrap}: {error}") from error
    missing = [topic for topic in topics if topic.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                t.name,
                num_partitions=t.partitions,
                replication_factor=replication_factor,
                config=t.config,
            )
            for t in missing
        ],
        request_timeout=30,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=30)
        except KafkaException as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise StackError(f"creating topic {name} failed: {error}") from error
    return [topic.name for topic in missing]
