"""The Spark image's entry file against the SparkApplications the operator builds: their
mainApplicationFile is this file in the image, and their arguments and mounted pipeline parse."""

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from finlake.contracts.medallion_pipeline import MedallionPipelineSpec, SparkJob
from finlake.errors import ConfigurationError
from finlake_operator.builders.common import Owner
from finlake_operator.builders.medallion_pipeline import (
    SPEC_FILE,
    SPEC_MOUNT,
    build_medallion_pipeline_children,
)
from finlake_spark import main as entry

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "manifests" / "examples" / "medallion-pipeline.yaml"
OWNER = Owner(kind="MedallionPipeline", name="market", namespace="markets", uid="uid-2")


def _applications() -> list[dict[str, Any]]:
    """The SparkApplication specs of the example pipeline (scheduled ones: their template)."""
    spec = MedallionPipelineSpec.model_validate(yaml.safe_load(EXAMPLE.read_text())["spec"])
    children = build_medallion_pipeline_children(OWNER, spec)
    specs = []
    for child in children:
        if child["kind"] == "SparkApplication":
            specs.append(child["spec"])
        elif child["kind"] == "ScheduledSparkApplication":
            specs.append(child["spec"]["template"])
    return specs


@pytest.fixture
def mounted_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pipeline document as the driver sees it: the spec ConfigMap's file, at its env path."""
    spec = MedallionPipelineSpec.model_validate(yaml.safe_load(EXAMPLE.read_text())["spec"])
    (config_map,) = [
        c for c in build_medallion_pipeline_children(OWNER, spec) if c["kind"] == "ConfigMap"
    ]
    path = tmp_path / SPEC_FILE
    path.write_text(config_map["data"][SPEC_FILE])
    (driver_env,) = {
        e["value"] for a in _applications() for e in a["driver"]["env"]
        if e["name"] == entry.PIPELINE_FILE_ENV
    }  # fmt: skip
    assert driver_env == f"{SPEC_MOUNT}/{SPEC_FILE}"
    monkeypatch.setenv(entry.PIPELINE_FILE_ENV, str(path))
    return path


def test_main_application_file_is_this_entry_file_in_the_image() -> None:
    files = {a["mainApplicationFile"] for a in _applications()}
    assert files == {"local:///opt/finlake/finlake_spark/main.py"}
    in_image = files.pop().removeprefix("local://")
    dockerfile = (ROOT / "spark_apps" / "Dockerfile").read_text()
    copies = re.findall(r"^COPY (spark_apps/\S+) (\S+)$", dockerfile, re.MULTILINE)
    assert ("spark_apps/finlake_spark/main.py", in_image) in copies
    assert Path(entry.__file__) == ROOT / "spark_apps" / "finlake_spark" / "main.py"


@pytest.mark.usefixtures("mounted_pipeline")
def test_every_application_s_arguments_parse_into_its_job() -> None:
    requests = {}
    for application in _applications():
        request = entry.parse_job(application["arguments"])
        assert request.job.value == application["arguments"][0]
        assert request.pipeline.name == "market"
        requests[request.job] = request
    assert set(requests) == set(SparkJob)
    upkeep = requests[SparkJob.MAINTENANCE]
    assert upkeep.tables == (
        "market.raw", "market.cleaned", "market.quarantine", "market.ohlc_1m", "market.ohlc_1h",
    )  # fmt: skip
    assert upkeep.target_file_size_mb == 128
    assert upkeep.snapshot_retention == timedelta(days=7)
    assert requests[SparkJob.BATCH].lookback == timedelta(hours=3)


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
