"""Running alert detection as users do: `finlake pipeline run alerts`, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from finlake.config import FinlakeSettings


def detection_env(
    settings: FinlakeSettings, home: Path, source_topic: str, alerts_topic: str, **extra: str
) -> dict[str, str]:
    """The session's broker and registry, a lake and checkpoint of its own under ``home``."""
    return {
        **os.environ,
        "FINLAKE_HOME": str(home),
        "FINLAKE_KAFKA__PORT": str(settings.kafka.port),
        "FINLAKE_REGISTRY__PORT": str(settings.registry.port),
        "FINLAKE_DETECTION__SOURCE_TOPIC": source_topic,
        "FINLAKE_DETECTION__ALERTS_TOPIC": alerts_topic,
        "FINLAKE_SPARK__MASTER": "local[2]",
        **extra,
    }


def run_detection_once(env: dict[str, str], *rules: Path) -> str:
    """Drain the source topic once; the job's output (fails the test when the job fails)."""
    options = [arg for path in rules for arg in ("--rules", str(path))]
    done = subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", "pipeline", "run", "alerts", "--once", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "alerts: done" in done.stdout
    return done.stdout + done.stderr
