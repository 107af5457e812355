"""A local session's Python workers run this interpreter, whatever `python3` on PATH is: the
README's `.venv/bin/finlake ...` commands run with no virtual environment on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from pyspark.sql import functions as F
from finlake.config import FinlakeSettings
from finlake.spark.session import build_session

settings = FinlakeSettings.model_validate(
    {"home": sys.argv[1], "spark": {"master": "local[1]", "log_level": "ERROR"}}
)
spark = build_session(settings, app_name="python-workers")
# A Python worker that needs this project's packages (as foreachBatch and the UDFs do).
where = F.udf(lambda _: __import__("finlake_spark").__name__ + " " + __import__("sys").executable)
print(spark.range(1).select(where("id")).first()[0])
spark.stop()
"""


def test_python_workers_of_a_local_session_run_this_interpreter(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"  # `python3` here is the system's: no pyspark, no finlake
    ran = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.split()[-2:] == ["finlake_spark", sys.executable]
