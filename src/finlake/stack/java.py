"""Finding a Java runtime of the right version for each JVM service."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from finlake.errors import JavaNotFoundError

JVM_ROOT = Path("/usr/lib/jvm")
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


@dataclass(frozen=True)
class JavaRuntime:
    """A ``java`` executable and its major version."""

    executable: Path
    major: int


def java_major(executable: Path, timeout_s: float = 30.0) -> int:
    """The major version ``executable -version`` reports."""
    try:
        done = subprocess.run(
            [str(executable), "-version"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except OSError as error:
        raise JavaNotFoundError(f"cannot run {executable}: {error.strerror}") from error
    except subprocess.TimeoutExpired as error:
        raise JavaNotFoundError(
            f"{executable} -version did not answer within {timeout_s:g}s; is it a working JDK?"
        ) from error
    match = _VERSION.search(done.stderr + done.stdout)
    if match is None:
        raise JavaNotFoundError(f"{executable} -version printed no version; is it a JDK?")
    first, second = int(match.group(1)), int(match.group(2) or 0)
    return second if first == 1 else first


def _candidates(java_home: Path | None) -> list[Path]:
    if java_home is not None:
        return [java_home / "bin" / "java"]
    on_path = [Path(found) for found in [shutil.which("java")] if found]
    scanned = sorted(JVM_ROOT.glob("*/bin/java")) if JVM_ROOT.is_dir() else []
    return on_path + [
        path for path in scanned if path.resolve() not in {p.resolve() for p in on_path}
    ]


def find_java(*, minimum: int, java_home: Path | None, purpose: str, setting: str) -> JavaRuntime:
    """A JDK ``minimum``+: ``java_home`` if set, else ``java`` on PATH, else under /usr/lib/jvm."""
    seen: list[JavaRuntime] = []
    for path in _candidates(java_home):
        if not path.exists():
            continue
        runtime = JavaRuntime(path, java_major(path))
        if runtime.major >= minimum:
            return runtime
        seen.append(runtime)
    if java_home is not None and not seen:
        raise JavaNotFoundError(
            f"{setting}={java_home} has no bin/java; point it at a JDK {minimum}+"
        )
    found = ", ".join(f"{runtime.executable} (Java {runtime.major})" for runtime in seen) or "none"
    raise JavaNotFoundError(
        f"{purpose} needs Java {minimum}+ but found {found}; install one (a distribution's "
        f"openjdk-{minimum}-jre-headless where it has one, or an Eclipse Temurin {minimum}+ JDK) "
        f"or set {setting} to a JDK {minimum}+ home"
    )
