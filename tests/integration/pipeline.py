"""Running the market pipeline as users do: `finlake pipeline run market --once`, in a subprocess.

A subprocess also because the test process already owns its one (SQLite-backed) Spark session.
"""

from __future__ import annotations

import os
import subprocess
import sys

from finlake.config import FinlakeSettings


def pipeline_env(settings: FinlakeSettings, topic: str, **extra: str) -> dict[str, str]:
    """The environment that points the pipeline at ``settings``' home, broker and registry."""
    return {
        **os.environ,
        "FINLAKE_HOME": str(settings.home),
        "FINLAKE_KAFKA__PORT": str(settings.kafka.port),
        "FINLAKE_REGISTRY__PORT": str(settings.registry.port),
        "FINLAKE_MARKET__TOPIC": topic,
        **extra,
    }


def run_once(env: dict[str, str]) -> str:
    """Drain the topic once; fail the test with the pipeline's output when it fails, else
    return that output (stdout, then stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "finlake.cli.main", "pipeline", "run", "market", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "market: done" in done.stdout
    return done.stdout + done.stderr
