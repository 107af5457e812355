"""Hadoop's local file system without a process per call, for Spark's checkpoints and the lake.

Without the native libhadoop (which no Maven artifact ships), Hadoop's RawLocalFileSystem forks
``chmod`` for every file it creates and ``readlink`` for every link status FileContext asks for:
about ten processes and 30 ms per checkpoint file on a two-core machine, three such files per
micro-batch, one per Iceberg metadata or data file. The classes in ``localfs/`` (Java, a few
dozen lines) do those two things through java.nio instead and leave the rest to Hadoop. They are
compiled once per source and Hadoop version against PySpark's own Hadoop jar, with the JDK's
``javac``, into the artifact cache; where there is no ``javac`` the session keeps Hadoop's
classes and says so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)
SOURCES = Path(__file__).parent / "localfs"
FILE_SYSTEM = "io.finlake.hadoop.NioLocalFileSystem"
ABSTRACT_FILE_SYSTEM = "io.finlake.hadoop.NioLocalFs"


def hadoop_api_jar() -> Path:
    """PySpark's Hadoop client API jar (what Spark runs with)."""
    import pyspark

    found = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    if not found:
        raise FileNotFoundError("PySpark ships no hadoop-client-api jar")
    return found[-1]


def find_javac() -> Path | None:
    """The ``javac`` of the JDK Spark runs on: $JAVA_HOME's, next to ``java``, or on PATH."""
    candidates = []
    if home := os.environ.get("JAVA_HOME"):
        candidates.append(Path(home) / "bin" / "javac")
    if java := shutil.which("java"):
        candidates.append(Path(java).resolve().parent / "javac")
    if javac := shutil.which("javac"):
        candidates.append(Path(javac))
    return next((path for path in candidates if path.is_file()), None)


def build_jar(cache_dir: Path, hadoop_jar: Path, javac: Path) -> Path:
    """Compile the sources into ``cache_dir`` (once per source and Hadoop jar); the jar's path."""
    sources = sorted(SOURCES.glob("*.java"))
    digest = hashlib.sha256(hadoop_jar.name.encode())
    for source in sources:
        digest.update(source.read_bytes())
    jar = cache_dir / "jvm" / f"finlake-localfs-{digest.hexdigest()[:16]}.jar"
    if jar.is_file():
        return jar
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jar.parent) as work:
        classes = Path(work) / "classes"
        command = [str(javac), "--release", "17", "-nowarn", "-cp", str(hadoop_jar)]
        done = subprocess.run(
            [*command, "-d", str(classes), *map(str, sources)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"javac failed: {done.stderr.strip()[-2000:]}")
        partial = Path(work) / jar.name
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(classes.rglob("*.class")):
                archive.write(path, path.relative_to(classes).as_posix())
        os.replace(partial, jar)  # atomic: a concurrent build or a crash leaves no half jar
    return jar


def local_fs_jar(cache_dir: Path) -> Path | None:
    """The compiled classes' jar; ``None`` (Hadoop's own classes stay) when it cannot be built."""
    javac = find_javac()
    if javac is None:
        log.info("no javac: Spark keeps Hadoop's local file system (a process per file created)")
        return None
    try:
        return build_jar(cache_dir, hadoop_api_jar(), javac)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
        log.warning("keeping Hadoop's local file system: %s", error)
        return None


LOCAL_FS_CONF = {
    "spark.hadoop.fs.file.impl": FILE_SYSTEM,
    "spark.hadoop.fs.AbstractFileSystem.file.impl": ABSTRACT_FILE_SYSTEM,
}
"""Spark conf that puts the classes in charge of ``file:`` paths (FileSystem and FileContext)."""
