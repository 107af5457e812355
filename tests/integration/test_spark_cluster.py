"""A Spark job on a cluster master, as a SparkApplication runs it: spark-submit with a master.

The cluster is Spark's own standalone master and worker (from pyspark's jars) as local processes,
so the driver and the executor are separate JVMs: the job must take spark-submit's master (not
fall back to local mode), find the connectors on the class path as in the finlake Spark image
(``FINLAKE_SPARK__CONNECTORS=provided``) and be reachable from the executor.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyspark
import pytest

from finlake.config import FinlakeSettings
from finlake.contracts.models import MarketTick
from finlake.contracts.topics import TopicSpec
from finlake.kafka_io import publish
from finlake.query import LakeQuery
from finlake.stack.artifacts import SPARK, ArtifactCache
from finlake.stack.kafka import create_topics
from finlake.transactions.generate import write_transactions_csv
from finlake.transactions.upload import open_lake, upload_transactions
from tests.conftest import free_port
from tests.integration.pipeline import pipeline_env, run_once

REPO = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).parent
PIPELINE = REPO / "manifests" / "examples" / "transactions-pipeline.yaml"


@dataclass(frozen=True)
class Standalone:
    url: str
    work: Path


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as answer:
            return int(json.load(answer).get("aliveworkers", 0))
    except OSError:
        return 0


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    """A standalone master and one worker (1 core, 1 GiB for executors) on loopback."""
    folder = tmp_path_factory.mktemp("standalone")
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(folder / "logs"),
        "PYSPARK_PYTHON": sys.executable,
    }
    port, ui_port = free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    commands = [
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", str(port), "--webui-port", str(ui_port)],
        [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
         "--cores", "1", "--memory", "1g", "--webui-port", str(free_port()),
         "--work-dir", str(folder / "work"), url],
    ]  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, command in zip(("master", "worker"), commands, strict=True):
            with (folder / f"{name}.log").open("wb") as log:  # the child keeps its own copy
                processes.append(
                    subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                )
            if name == "master":
                _wait(lambda: _listening(port), "the standalone master")
        _wait(lambda: _alive_workers(ui_port) == 1, "the worker to register")
        yield Standalone(url, folder / "work")
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def assert_tasks_ran_on_the_executor(standalone: Standalone, before: set[Path]) -> None:
    """The one application started since ``before`` ran tasks in the worker's executor, a JVM
    of its own, not in the driver."""
    [app] = set(standalone.work.glob("app-*")) - before
    [executor_log] = list(app.glob("*/stderr"))
    text = executor_log.read_text()
    assert text.count("Finished task") > 0, text[-3000:]


def test_a_submitted_job_runs_its_tasks_on_the_clusters_executor(
    standalone: Standalone, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    settings = FinlakeSettings.model_validate({"home": home})
    csv = tmp_path / "transactions.csv"
    start = (datetime.now(UTC) - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    write_transactions_csv(csv, rows=3_000, accounts=40, fraud_rate=0.02, start=start, days=2)
    catalog, warehouse = open_lake(settings)
    with csv.open("rb") as stream:
        uploaded = upload_transactions(catalog, warehouse, stream, file_name=csv.name)
    before = set(standalone.work.glob("app-*"))
    # The image runs the main file alone in its folder (next to finlake_spark's modules, its
    # folder would shadow the standard library's io).
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(REPO / "spark_apps" / "finlake_spark" / "main.py", app / "main.py")
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINLAKE_SPARK__")}
    # As in the image: the connectors on the class path of the driver and of every executor.
    class_path = ":".join(str(jar) for jar in ArtifactCache(settings.stack.cache_dir).jars(SPARK))
    env |= {
        "FINLAKE_SPARK__CONNECTORS": "provided",
        "FINLAKE_HOME": str(home),
        "FINLAKE_PIPELINE_FILE": str(PIPELINE),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    command = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        *("--master", standalone.url, "--conf", "spark.executor.memory=1g"),
        *(
            "--driver-class-path",
            class_path,
            "--conf",
            f"spark.executor.extraClassPath={class_path}",
        ),
        str(app / "main.py"),
        *("transactions-batch", "--no-features"),
    ]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    query = LakeQuery(settings)
    _, [(validated,)] = query.run("SELECT count(*) FROM transactions.validated")
    _, [(quarantined,)] = query.run("SELECT count(*) FROM transactions.quarantine")
    assert validated + quarantined == uploaded.rows_total
    assert validated > 0
    assert_tasks_ran_on_the_executor(standalone, before)


def test_the_market_stream_on_a_cluster_master_ships_its_connectors_to_the_executor(
    standalone: Standalone, settings: FinlakeSettings, tmp_path: Path
) -> None:
    topic = "ticks-on-a-cluster"
    create_topics(settings.kafka.bootstrap, [TopicSpec(topic, 3, 86_400_000, "symbol", None)])
    start = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    ticks = [
        MarketTick(
            symbol=symbol, timestamp=start + step * timedelta(seconds=15), price=100 + step / 10,
            volume=10 * (step + 1), source="replay", produced_at=start,
        )
        for step in range(120)
        for symbol in ("AAA", "BBB")
    ]  # fmt: skip
    publish(settings, topic, ticks, key_field="symbol")
    before = set(standalone.work.glob("app-*"))
    lake = settings.model_copy(update={"home": tmp_path})
    # Not under spark-submit: the master comes from the settings, the downloaded connectors go
    # to the executor with the application (spark.jars).
    env = pipeline_env(
        lake, topic, FINLAKE_SPARK__MASTER=standalone.url, PYSPARK_PYTHON=sys.executable,
        SPARK_LOCAL_IP="127.0.0.1",
    )  # fmt: skip
    run_once(env)
    query = LakeQuery(FinlakeSettings.model_validate({"home": tmp_path}))
    _, [(bronze,)] = query.run("SELECT count(*) FROM market.raw")
    _, [(silver,)] = query.run("SELECT count(*) FROM market.cleaned")
    _, [(bars,)] = query.run("SELECT count(*) FROM market.ohlc_1m")
    assert (bronze, silver, bars) == (len(ticks), len(ticks), 2 * 30)
    assert_tasks_ran_on_the_executor(standalone, before)
