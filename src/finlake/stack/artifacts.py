"""Pinned artifacts from Maven Central, resolved by Maven into the cache, verified by checksum."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from finlake.errors import ArtifactError
from finlake.stack.process import exclusive

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
SPARK_VERSION = "4.1.1"
# 4.1.3's Kafka source fixes the restart crash SPARK-57438 (NullPointerException in metrics() when
# a batch planned before a crash is re-run; https://github.com/apache/spark/pull/56526). Spark
# 4.1.3's avro and token-provider jars are not on Maven Central, so only this one is newer.
KAFKA_CONNECTOR_VERSION = "4.1.3"
ICEBERG_VERSION = "1.11.0"
APICURIO_VERSION = "3.3.3"
# The newest Trino on Maven Central: from 477 on, server tarballs and plugin zips are not published.
TRINO_VERSION = "476"
MANIFEST = "finlake-manifest.json"
# Pinned: Maven 3.8's default dependency plugin is 2.8.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_OFFLINE_HINTS = (
    "Could not transfer",
    "Unknown host",
    "UnknownHost",
    "Network is unreachable",
    "Connection refused",
    "connect timed out",
    "Could not resolve",
    "Temporary failure",
)


@dataclass(frozen=True)
class Bundle:
    """A set of Maven artifacts copied into one cache folder (jars, or an unpacked archive)."""

    name: str
    coordinates: tuple[str, ...]
    only: tuple[str, ...] = ()
    archive: bool = False
    # (artifactId of a listed dependency, "group:artifact" to leave out of its tree)
    exclusions: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """A folder name that changes whenever the pinned coordinates change."""
        pinned = self.coordinates + self.only + tuple(":".join(pair) for pair in self.exclusions)
        digest = hashlib.sha256("\n".join(pinned).encode()).hexdigest()
        return f"{self.name}-{digest[:12]}"


KAFKA = Bundle(
    "kafka",
    (
        f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
        # The CLI tools, ProducerPerformance among them (the producer benchmark's peer).
        f"org.apache.kafka:kafka-tools:{KAFKA_VERSION}",
        "org.slf4j:slf4j-simple:1.7.36",
    ),
)
SPARK = Bundle(
    "spark",
    (
        f"org.apache.spark:spark-sql-kafka-0-10_2.13:{KAFKA_CONNECTOR_VERSION}",
        f"org.apache.spark:spark-token-provider-kafka-0-10_2.13:{SPARK_VERSION}",
        f"org.apache.spark:spark-avro_2.13:{SPARK_VERSION}",
        f"org.apache.iceberg:iceberg-spark-runtime-4.1_2.13:{ICEBERG_VERSION}",
        "org.xerial:sqlite-jdbc:3.53.2.1",
        "org.postgresql:postgresql:42.7.14",
    ),
    # Its 4.1.3 dependency is not on Maven Central; 4.1.1 is the same code.
    exclusions=(
        ("spark-sql-kafka-0-10_2.13", "org.apache.spark:spark-token-provider-kafka-0-10_2.13"),
    ),
    # pyspark ships Spark itself; copy only the connectors, never a second Spark or Hadoop.
    only=(
        "spark-sql-kafka-0-10_2.13",
        "spark-token-provider-kafka-0-10_2.13",
        "kafka-clients",
        "commons-pool2",
        "spark-avro_2.13",
        "iceberg-spark-runtime-4.1_2.13",
        "sqlite-jdbc",
        "postgresql",
    ),
)
APICURIO = Bundle(
    "apicurio", (f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all",), archive=True
)
# S3FileIO for Spark when the warehouse is on S3 (avoids hadoop-aws and its 600 MB SDK).
SPARK_S3 = Bundle(
    "spark-s3",
    (f"org.apache.iceberg:iceberg-aws-bundle:{ICEBERG_VERSION}",),
    only=("iceberg-aws-bundle",),
)
# The minimal server plus the one plugin we use (the full tarball is over 1 GB).
TRINO = Bundle(
    "trino",
    (
        f"io.trino:trino-server-core:{TRINO_VERSION}:tar.gz",
        f"io.trino:trino-iceberg:{TRINO_VERSION}:zip",
    ),
    archive=True,
)
BUNDLES = (KAFKA, SPARK, APICURIO)
# What `finlake stack up --with trino` needs on top.
TRINO_BUNDLES = (SPARK_S3, TRINO)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pom(bundle: Bundle) -> str:
    dependencies = []
    for coordinate in bundle.coordinates:
        group, artifact, version = coordinate.split(":")[:3]
        excluded = "".join(
            f"<exclusion><groupId>{gone.split(':')[0]}</groupId>"
            f"<artifactId>{gone.split(':')[1]}</artifactId></exclusion>"
            for owner, gone in bundle.exclusions
            if owner == artifact
        )
        dependencies.append(
            f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version><exclusions>{excluded}</exclusions></dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>io.finlake.local</groupId><artifactId>{bundle.name}</artifactId>"
        "<version>1</version><packaging>pom</packaging>"
        f"<dependencies>{''.join(dependencies)}</dependencies></project>"
    )


class ArtifactCache:
    """Resolves bundles into ``<cache>/artifacts/<bundle-key>/`` and verifies them on every use."""

    def __init__(self, cache_dir: Path, maven: str = "mvn", mirror: str | None = None) -> None:
        self.root = cache_dir / "artifacts"
        self.repository = cache_dir / "m2"
        self.maven = maven
        self.mirror = mirror

    def folder(self, bundle: Bundle) -> Path:
        """Where the verified bundle lives."""
        return self.root / bundle.key

    def problems(self, bundle: Bundle) -> list[str]:
        """What is wrong with the cached copy of ``bundle`` (empty when it is whole)."""
        folder = self.folder(bundle)
        manifest = folder / MANIFEST
        if not manifest.exists():
            return ["not downloaded yet"] if not folder.exists() else ["download never finished"]
        expected: dict[str, str] = json.loads(manifest.read_text())
        problems = []
        for name, digest in expected.items():
            path = folder / name
            if not path.exists():
                problems.append(f"{name} is missing")
            elif sha256_file(path) != digest:
                problems.append(f"{name} does not match its checksum")
        return problems

    def ensure(self, bundle: Bundle, report: Callable[[str], None] | None = None) -> Path:
        """The bundle folder, downloaded (or downloaded again) when missing or corrupt; ``report``
        (default: a warning) hears once if another process's download is waited for."""
        if not self.problems(bundle):
            return self.folder(bundle)
        lock = self.root / ".resolve.lock"

        def waiting() -> None:
            message = f"{bundle.name}: waiting for another process downloading into {self.root}"
            if report is None:
                log.warning("%s", message)
            else:
                report(message)

        # One download at a time per cache: two would share the partial folder and Maven 3.8's
        # repository (which has no locks of its own and which a corrupt-jar retry prunes).
        with exclusive(lock, waiting=waiting):
            # The process waited for may have just downloaded it.
            if self.problems(bundle):
                self._resolve(bundle)
            remaining = self.problems(bundle)
        if remaining:
            raise ArtifactError(
                f"{bundle.name} artifacts still broken after download: {remaining[0]}"
            )
        return self.folder(bundle)

    def jars(self, bundle: Bundle) -> list[Path]:
        """The bundle's jars (downloading it first if needed)."""
        return sorted(self.ensure(bundle).glob("lib/*.jar"))

    def _resolve(self, bundle: Bundle) -> None:
        if shutil.which(self.maven) is None:
            raise ArtifactError(
                f"Maven ({self.maven}) is not installed; run `apt-get install maven` "
                "or set FINLAKE_STACK__MAVEN"
            )
        work = self.root / f".{bundle.key}.partial"
        shutil.rmtree(work, ignore_errors=True)
        (work / "lib").mkdir(parents=True)
        (work / "pom.xml").write_text(_pom(bundle))
        for attempt in range(2):
            self._run_maven(bundle, work)
            broken = [jar for jar in (work / "lib").iterdir() if not _is_whole_archive(jar)]
            if not broken:
                break
            # A corrupt file in Maven's own repository is never re-checked by Maven: drop it.
            for jar in broken:
                for cached in self.repository.rglob(jar.name):
                    cached.unlink()
                jar.unlink()
            if attempt == 1:
                raise ArtifactError(
                    f"{broken[0].name} from Maven Central is corrupt twice in a row"
                )
        if bundle.archive:
            _unpack(work)
        manifest = {
            str(path.relative_to(work)): sha256_file(path)
            for path in sorted(work.rglob("*"))
            if path.is_file() and path.name != "pom.xml"
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1))
        target = self.folder(bundle)
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)

    def _run_maven(self, bundle: Bundle, work: Path) -> None:
        command = [
            self.maven,
            "-B",
            "-q",
            "--strict-checksums",
            f"-Dmaven.repo.local={self.repository}",
            "-f",
            str(work / "pom.xml"),
        ]
        if self.mirror:
            settings = work / "settings.xml"
            settings.write_text(
                "<settings><mirrors><mirror><id>finlake</id><mirrorOf>*</mirrorOf>"
                f"<url>{self.mirror}</url></mirror></mirrors></settings>"
            )
            command += ["-s", str(settings)]
        output = f"-DoutputDirectory={work / 'lib'}"
        if not bundle.archive:
            goal = [f"{DEPENDENCY_PLUGIN}:copy-dependencies", "-DincludeScope=runtime"]
            if bundle.only:
                goal.append(f"-DincludeArtifactIds={','.join(bundle.only)}")
            _run(bundle, [*command, *goal, output])
            return
        # The copy goal takes one artifact per run.
        for coordinate in bundle.coordinates:
            _run(
                bundle, [*command, f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={coordinate}", output]
            )


def _run(bundle: Bundle, command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    except subprocess.TimeoutExpired as error:
        raise ArtifactError(
            f"downloading {bundle.name} took over 30 min; check the network"
        ) from error
    if done.returncode != 0:
        raise ArtifactError(_maven_failure(bundle, done.stdout + done.stderr))


def _maven_failure(bundle: Bundle, output: str) -> str:
    if any(hint in output for hint in _OFFLINE_HINTS):
        return (
            f"cannot download {bundle.name} ({bundle.coordinates[0]}) from Maven Central and the "
            "cache has no verified copy: connect to the network (or set "
            "FINLAKE_STACK__MAVEN_MIRROR to a reachable mirror) and run again"
        )
    errors = [line for line in output.splitlines() if "[ERROR]" in line]
    detail = errors[0].replace("[ERROR]", "").strip() if errors else output.strip()[-300:]
    return f"Maven failed to resolve {bundle.name}: {detail}"


def _is_whole_archive(path: Path) -> bool:
    if path.suffix in (".jar", ".zip"):
        try:
            with zipfile.ZipFile(path) as archive:
                return archive.testzip() is None
        except (zipfile.BadZipFile, OSError):
            return False
    if path.name.endswith(".tar.gz"):
        try:
            with tarfile.open(path) as archive:
                archive.getmembers()
            return True
        except (tarfile.TarError, OSError, EOFError):
            return False
    return True


def extract_tar(archive: tarfile.TarFile, folder: Path) -> None:
    """Extract ``archive`` into ``folder``, refusing what would land outside it.

    Python's "data" filter where it has one (3.11.4+); before that (Debian bookworm's 3.11.2), the
    same checks by hand: no absolute or ``..`` path, no link pointing out, no device file."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(folder, filter="data")
        return
    root = folder.resolve()
    for member in archive.getmembers():
        target = (root / member.name).resolve()
        unsafe = not target.is_relative_to(root) or member.isdev()
        if member.issym() or member.islnk():
            base = target.parent if member.issym() else root
            unsafe = unsafe or not (base / member.linkname).resolve().is_relative_to(root)
        if unsafe:
            source = os.fsdecode(archive.name) if archive.name else "a tarball"
            raise ArtifactError(
                f"{source}: member {member.name!r} would be extracted outside {folder}"
            )
    archive.extractall(folder)


def _unpack(work: Path) -> None:
    for archive_path in list((work / "lib").glob("*.tar.gz")):
        with tarfile.open(archive_path) as archive:
            extract_tar(archive, work / "app")
        archive_path.unlink()
    for archive_path in list((work / "lib").glob("*.zip")):
        with zipfile.ZipFile(archive_path) as archive:
            archive.extractall(work / "app")
        archive_path.unlink()
