"""The local schema registry: Apicurio Registry 3, Confluent-compatible API, kafkasql storage."""

from __future__ import annotations

import os
import signal

import httpx

from finlake.config import FinlakeSettings
from finlake.errors import RegistryError
from finlake.stack.artifacts import APICURIO, ArtifactCache
from finlake.stack.java import JavaRuntime, find_java

# Apicurio 3.3 is compiled for Java 21 (class file version 65), newer than the default JDK 17.
REGISTRY_JAVA = 21


class RegistryService:
    """Starts and checks Apicurio Registry; its storage is a topic on the local broker."""

    name = "registry"
    stop_signal = signal.SIGTERM

    def __init__(self, settings: FinlakeSettings, artifacts: ArtifactCache) -> None:
        self.settings = settings
        self.artifacts = artifacts

    @property
    def ports(self) -> list[tuple[int, str]]:
        """Ports to bind, with the setting that moves each."""
        return [
            (self.settings.registry.port, "FINLAKE_REGISTRY__PORT"),
            (self.settings.registry.management_port, "FINLAKE_REGISTRY__MANAGEMENT_PORT"),
        ]

    @property
    def address(self) -> str:
        """This registry's Confluent-compatible API base URL (FINLAKE_REGISTRY__URL, which points
        clients at another registry, must not send the stack's checks there)."""
        return self.settings.registry.local_url

    def java(self) -> JavaRuntime:
        """The JDK this service runs on (checked before anything is downloaded)."""
        return find_java(
            minimum=REGISTRY_JAVA,
            java_home=self.settings.stack.registry_java_home,
            purpose="Apicurio Registry",
            setting="FINLAKE_STACK__REGISTRY_JAVA_HOME",
        )

    def check(self) -> None:
        """Raise when no suitable JDK is installed."""
        self.java()

    def prepare(self) -> list[str]:
        """The command that runs the registry."""
        java = self.java()
        app = self.artifacts.ensure(APICURIO) / "app" / "quarkus-run.jar"
        registry = self.settings.registry
        return [
            str(java.executable),
            f"-Xmx{registry.heap}",
            "-XX:+UseSerialGC",
            f"-Dquarkus.http.host={registry.host}",
            f"-Dquarkus.http.port={registry.port}",
            # Records in Kafka name schema ids, so the schemas live on the same broker (kafkasql).
            "-Dapicurio.storage.kind=kafkasql",
            f"-Dapicurio.kafkasql.bootstrap.servers={self.settings.kafka.local_bootstrap}",
            "-Dquarkus.analytics.disabled=true",
            # The build enables Quarkus' management interface, by default on 0.0.0.0:9000.
            f"-Dquarkus.management.host={registry.host}",
            f"-Dquarkus.management.port={registry.management_port}",
            "-jar",
            str(app),
        ]

    def environment(self) -> dict[str, str]:
        """The registry's environment (Quarkus reads some settings from it)."""
        return dict(os.environ)

    def healthy(self) -> bool:
        """Whether the ccompat API answers."""
        try:
            return httpx.get(f"{self.address}/subjects", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def after_start(self) -> list[str]:
        """Set the global compatibility mode to BACKWARD."""
        try:
            response = httpx.put(
                f"{self.address}/config", json={"compatibility": "BACKWARD"}, timeout=10
            )
        except httpx.HTTPError as error:
            raise RegistryError(f"registry at {self.address} did not answer: {error}") from error
        if response.status_code != 200:
            raise RegistryError(f"registry refused BACKWARD compatibility: {response.text[:200]}")
        return []

    def diagnose(self, log: list[str]) -> str | None:
        """A one-line reason from the registry's log, when it exited during start-up."""
        for line in reversed(log):
            if "Port already bound" in line or "Address already in use" in line:
                return f"port {self.settings.registry.port} is already in use"
            if "UnsupportedClassVersionError" in line:
                return (
                    f"Apicurio needs Java {REGISTRY_JAVA}+; set FINLAKE_STACK__REGISTRY_JAVA_HOME"
                )
        return None
