"""The Spark image's entry file against the SparkApplications the operator builds: their
mainApplicationFile is this file in the image, and their arguments and mounted pipeline parse."""

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from finlake.contracts.medallion_pipeline import MedallionPipelineSpec, SparkJob
from finlake.errors import ConfigurationError
from finlake_operator.builders.common import Owner
from finlake_operator.builders.medallion_application import SPEC_FILE, SPEC_MOUNT
from finlake_operator.builders.medallion_pipeline import build_medallion_pipeline_children
from finlake_spark import main as entry

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "manifests" / "examples" / "medallion-pipeline.yaml"
TRANSACTIONS_EXAMPLE = ROOT / "manifests" / "examples" / "transactions-pipeline.yaml"
OWNER = Owner(kind="MedallionPipeline", name="market", namespace="markets", uid="uid-2")


def _applications(example: Path = EXAMPLE) -> list[dict[str, Any]]:
    """The SparkApplication specs of an example pipeline (scheduled ones: their template)."""
    spec = MedallionPipelineSpec.model_validate(yaml.safe_load(example.read_text())["spec"])
    children = build_medallion_pipeline_children(OWNER, spec)
    specs = []
    for child in children:
        if child["kind"] == "SparkApplication":
            specs.append(child["spec"])
        elif child["kind"] == "ScheduledSparkApplication":
            specs.append(child["spec"]["template"])
    return specs


def _mount(example: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pipeline document as the driver sees it: the spec ConfigMap's file, at its env path."""
    spec = MedallionPipelineSpec.model_validate(yaml.safe_load(example.read_text())["spec"])
    (config_map,) = [
        c for c in build_medallion_pipeline_children(OWNER, spec) if c["kind"] == "ConfigMap"
    ]
    path = folder / SPEC_FILE
    path.write_text(config_map["data"][SPEC_FILE])
    (driver_env,) = {
        e["value"] for a in _applications(example) for e in a["driver"]["env"]
        if e["name"] == entry.PIPELINE_FILE_ENV
    }  # fmt: skip
    assert driver_env == f"{SPEC_MOUNT}/{SPEC_FILE}"
    monkeypatch.setenv(entry.PIPELINE_FILE_ENV, str(path))
    return path


@pytest.fixture
def mounted_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The market example, mounted."""
    return _mount(EXAMPLE, tmp_path, monkeypatch)


@pytest.fixture
def mounted_transactions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The transactions example, mounted."""
    return _mount(TRANSACTIONS_EXAMPLE, tmp_path, monkeypatch)


def test_main_application_file_is_this_entry_file_in_the_image() -> None:
    files = {
        a["mainApplicationFile"] for e in (EXAMPLE, TRANSACTIONS_EXAMPLE) for a in _applications(e)
    }
    assert files == {"local:///opt/finlake/finlake_spark/main.py"}
    in_image = files.pop().removeprefix("local://")
    dockerfile = (ROOT / "spark_apps" / "Dockerfile").read_text()
    copies = re.findall(r"^COPY (spark_apps/\S+) (\S+)$", dockerfile, re.MULTILINE)
    assert ("spark_apps/finlake_spark/main.py", in_image) in copies
    assert Path(entry.__file__) == ROOT / "spark_apps" / "finlake_spark" / "main.py"


def test_every_application_s_arguments_parse_into_its_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = {}
    for example in (TRANSACTIONS_EXAMPLE, EXAMPLE):
        _mount(example, tmp_path, monkeypatch)
        for application in _applications(example):
            request = entry.parse_job(application["arguments"])
            assert request.job.value == application["arguments"][0]
            assert request.pipeline.name == "market"
            requests[request.job, example] = request
    assert {job for job, _ in requests} == set(SparkJob)
    transactions = requests[SparkJob.MAINTENANCE, TRANSACTIONS_EXAMPLE]
    assert transactions.tables == (
        "transactions.raw", "transactions.validated", "transactions.quarantine",
        "transactions.summary", "transactions.uploads", "transactions.batch_runs",
    )  # fmt: skip
    batch = requests[SparkJob.TRANSACTIONS_BATCH, TRANSACTIONS_EXAMPLE]
    assert (batch.hour, batch.features) == (None, True)
    upkeep = requests[SparkJob.MAINTENANCE, EXAMPLE]
    assert upkeep.tables == (
        "market.raw", "market.cleaned", "market.quarantine", "market.ohlc_1m", "market.ohlc_1h",
        "market.dead_letter", "market.pipeline_runs",
    )  # fmt: skip
    assert upkeep.target_file_size_mb == 128
    assert upkeep.snapshot_retention == timedelta(days=7)
    assert requests[SparkJob.BATCH, EXAMPLE].lookback == timedelta(hours=3)
    detection = requests[SparkJob.ALERT_DETECTION, EXAMPLE]
    assert detection.rules == (Path("/etc/finlake/rules"),)
    assert detection.allow_no_rules is True


@pytest.mark.usefixtures("mounted_pipeline")
def test_the_detection_job_runs_with_the_settings_its_application_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (application,) = [a for a in _applications() if a["arguments"][0] == "alert-detection"]
    for variable in application["driver"]["env"]:
        if variable["name"] != entry.PIPELINE_FILE_ENV:  # mounted by the fixture
            monkeypatch.setenv(variable["name"], variable["value"])
    settings = entry.detection_settings(entry.parse_job(application["arguments"]))
    detection = settings.detection
    assert detection.rules == [Path("/etc/finlake/rules")]
    assert detection.allow_no_rules is True
    assert (detection.source_topic, detection.alerts_topic) == ("market-data", "alerts")
    assert detection.state_partitions == 1
    assert (detection.metrics_port, detection.metrics_host) == (9100, "0.0.0.0")


def test_a_pipeline_naming_other_tables_is_refused_naming_the_field(
    mounted_pipeline: Path,
) -> None:
    mounted_pipeline.write_text(
        mounted_pipeline.read_text().replace("table: market.cleaned", "table: market.clean")
    )
    with pytest.raises(ConfigurationError, match=r"spec\.layers\.silver\.table: 'market\.clean'"):
        entry.parse_job([SparkJob.STREAM.value])


@pytest.mark.usefixtures("mounted_pipeline")
def test_unknown_job_tables_and_missing_pipeline_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(typer.TyperException, match="No such command 'market-steam'"):
        entry.parse_job(["market-steam"])
    with pytest.raises(typer.BadParameter, match=r"'other\.table' is not a table of pipeline"):
        entry.parse_job([SparkJob.MAINTENANCE.value, "other.table"])
    monkeypatch.delenv(entry.PIPELINE_FILE_ENV)
    with pytest.raises(ConfigurationError, match="FINLAKE_PIPELINE_FILE is not set"):
        entry.parse_job([SparkJob.STREAM.value])


def test_run_as_a_file_a_bad_pipeline_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # As spark-submit runs it: a script path, not a module (so no Spark starts on a bad input).
    bad = tmp_path / "pipeline.yaml"
    bad.write_text(
        "apiVersion: finlake.io/v1alpha1\nkind: MedallionPipeline\nmetadata: {name: x}\n"
    )
    done = subprocess.run(
        [sys.executable, entry.__file__, SparkJob.STREAM.value],
        env={"PATH": "/usr/bin:/bin", entry.PIPELINE_FILE_ENV: str(bad)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: "), line
    assert "spec" in line, line


@pytest.mark.usefixtures("mounted_transactions")
def test_a_pipeline_of_the_other_flow_is_refused_naming_the_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        ConfigurationError, match=r"a transactions pipeline; this job runs a market"
    ):
        entry.parse_job([SparkJob.STREAM.value])
    with pytest.raises(
        ConfigurationError, match=r"a transactions pipeline; this job runs a market"
    ):
        entry.parse_job([SparkJob.BATCH.value])
    request = entry.parse_job(
        [SparkJob.TRANSACTIONS_BATCH.value, "--hour", "2026-05-01T13:00", "--no-features"]
    )
    assert request.hour == datetime(2026, 5, 1, 13, tzinfo=UTC)
    assert request.features is False
    with pytest.raises(typer.BadParameter, match="is not an hour"):
        entry.parse_job([SparkJob.TRANSACTIONS_BATCH.value, "--hour", "1pm"])
    with pytest.raises(ConfigurationError, match=r"alert detection reads a market pipeline"):
        entry.parse_job([SparkJob.ALERT_DETECTION.value, "--rules", str(tmp_path)])
    _mount(EXAMPLE, tmp_path, monkeypatch)
    with pytest.raises(
        ConfigurationError, match=r"a market pipeline; this job runs a transactions"
    ):
        entry.parse_job([SparkJob.TRANSACTIONS_BATCH.value])


def test_a_transactions_pipeline_naming_other_tables_is_refused(
    mounted_transactions: Path,
) -> None:
    document = yaml.safe_load(mounted_transactions.read_text())
    document["spec"]["layers"]["gold"]["tables"] = ["transactions.summaries"]
    mounted_transactions.write_text(yaml.safe_dump(document))
    with pytest.raises(
        ConfigurationError,
        match=r"spec\.layers\.gold\.tables\[0\]: 'transactions\.summaries' \(the transactions "
        r"jobs write transactions\.summary\)",
    ):
        entry.parse_job([SparkJob.TRANSACTIONS_BATCH.value])


@pytest.mark.usefixtures("mounted_transactions")
def test_the_transactions_job_runs_the_batch_then_the_features_without_the_ml_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Spark image has no ml extra: the refresh is reported, the job still succeeds."""
    from finlake_spark.jobs import transactions_schedule
    from finlake_spark.jobs.transactions_batch import INCREMENTAL, RunCounts, RunResult

    runs: list[tuple[object, ...]] = []

    def batch_run(settings: object, *, hour: object, spark: object) -> RunResult:
        runs.append((type(settings).__name__, hour, spark))
        counts = RunCounts(rows_in=10, validated_rows=9, quarantined_rows=1, summary_rows=3)
        return RunResult("run1", INCREMENTAL, None, 7, None, counts, 2.0)

    # The batch itself (Spark, the lake) is the integration suite's; here: what follows it.
    monkeypatch.setattr(transactions_schedule, "run_once", batch_run)
    monkeypatch.setitem(sys.modules, "finlake.ml.store", None)  # as in the image: no ml extra
    entry.run_job(entry.parse_job([SparkJob.TRANSACTIONS_BATCH.value]))
    assert runs == [("SparkAppSettings", None, None)]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("transactions (new bronze): 10 rows read, 9 new in")
    assert lines[1].startswith("features: not refreshed, the ml extra is not installed")
