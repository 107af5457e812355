"""The entry file of the finlake Spark image: ``spark-submit main.py <job> [options]``.

The operator's SparkApplications run ``local:///opt/finlake/finlake_spark/main.py`` (the image
copies this file there, alone, so its folder shadows no module) with the job name first, one of
:class:`~finlake.contracts.medallion_pipeline.SparkJob`. The pipeline is the MedallionPipeline
document at ``$FINLAKE_PIPELINE_FILE`` (the operator mounts it from a ConfigMap; locally any file
``finlake`` reads), loaded through the same contract as every other runtime.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from finlake.contracts.medallion_pipeline import (
    KIND,
    TABLE,
    TRANSACTIONS_LAYERS,
    LayersSpec,
    MedallionPipelineSpec,
    PipelineFlow,
    SparkJob,
)
from finlake.contracts.resources import Resource, load_resources, parse_duration
from finlake.errors import ConfigurationError

if TYPE_CHECKING:
    from finlake_spark.alerts.config import DetectionAppSettings
    from finlake_spark.config import SparkAppSettings

PIPELINE_FILE_ENV = "FINLAKE_PIPELINE_FILE"
# The tables the market jobs write (finlake.lake.tables); a pipeline naming others is refused.
MARKET_LAYERS = {
    "bronze.table": "market.raw",
    "silver.table": "market.cleaned",
    "silver.quarantineTable": "market.quarantine",
    "gold.tables[0]": "market.ohlc_1m",
    "gold.tables[1]": "market.ohlc_1h",
}
# The tables the transactions batch writes (finlake.lake.tables), a transactions pipeline's default.
TRANSACTIONS_TABLES = dict(LayersSpec.model_validate(TRANSACTIONS_LAYERS).named_tables())


@dataclass(frozen=True)
class JobRequest:
    """One job to run: which, on which pipeline, with its options."""

    job: SparkJob
    pipeline: Resource[MedallionPipelineSpec]
    tables: tuple[str, ...] = ()
    target_file_size_mb: int = 128
    snapshot_retention: timedelta = timedelta(days=7)
    lookback: timedelta = timedelta(hours=3)
    hour: datetime | None = None
    features: bool = True
    rules: tuple[Path, ...] = ()
    allow_no_rules: bool = False


def load_pipeline(environ: Mapping[str, str]) -> Resource[MedallionPipelineSpec]:
    """The one MedallionPipeline of ``$FINLAKE_PIPELINE_FILE``; ConfigurationError otherwise."""
    path = environ.get(PIPELINE_FILE_ENV)
    if not path:
        raise ConfigurationError(f"{PIPELINE_FILE_ENV} is not set: the MedallionPipeline to run")
    resources = load_resources([path], kind=KIND)
    if len(resources) != 1:
        raise ConfigurationError(f"{path}: {len(resources)} pipelines, one expected")
    resource: Resource[MedallionPipelineSpec] = resources[0]
    return resource


def check_tables(pipeline: Resource[MedallionPipelineSpec], flow: PipelineFlow) -> None:
    """Refuse a pipeline of another flow, or whose layers name tables its jobs do not write."""
    if pipeline.spec.flow is not flow:
        raise ConfigurationError(
            f"{pipeline.name}: a {pipeline.spec.flow.value} pipeline; this job runs a "
            f"{flow.value} one (spec.flow)"
        )
    expected = MARKET_LAYERS if flow is PipelineFlow.MARKET else TRANSACTIONS_TABLES
    named = dict(pipeline.spec.layers.named_tables())
    wrong = [
        f"spec.layers.{field}: {named.get(field)!r} (the {flow.value} jobs write {table})"
        for field, table in expected.items()
        if named.get(field) != table
    ]
    extra = sorted(set(named) - set(expected))
    wrong += [f"spec.layers.{field}: no {flow.value} job writes {named[field]}" for field in extra]
    if wrong:
        raise ConfigurationError(f"{pipeline.name}: {'; '.join(wrong)}")


def check_market_tables(pipeline: Resource[MedallionPipelineSpec]) -> None:
    """Refuse a pipeline whose layers name tables the market jobs do not write."""
    check_tables(pipeline, PipelineFlow.MARKET)


def _duration(value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.command(SparkJob.STREAM.value)
def market_stream() -> JobRequest:
    """Kafka -> bronze -> silver (+ quarantine) -> gold bars, until stopped."""
    pipeline = load_pipeline(os.environ)
    check_market_tables(pipeline)
    return JobRequest(SparkJob.STREAM, pipeline)


@app.command(SparkJob.BATCH.value)
def market_batch(
    lookback: Annotated[
        str, typer.Option(help="Recompute the gold bars of the silver rows this recent.")
    ] = "3h",
) -> JobRequest:
    """The hourly batch: gold bars recomputed from silver (late rows included)."""
    pipeline = load_pipeline(os.environ)
    check_market_tables(pipeline)
    return JobRequest(SparkJob.BATCH, pipeline, lookback=_duration(lookback))


def _hour(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an hour such as 2026-05-01T13:00") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@app.command(SparkJob.TRANSACTIONS_BATCH.value)
def transactions_batch(
    hour: Annotated[
        str | None,
        typer.Option(help="Process again the bronze received in this hour (UTC), idempotent."),
    ] = None,
    features: Annotated[
        bool,
        typer.Option(help="After a run that changed silver, refresh the fraud features."),
    ] = True,
) -> JobRequest:
    """The hourly transactions batch: new bronze -> silver (+ quarantine) -> summaries."""
    pipeline = load_pipeline(os.environ)
    check_tables(pipeline, PipelineFlow.TRANSACTIONS)
    return JobRequest(SparkJob.TRANSACTIONS_BATCH, pipeline, hour=_hour(hour), features=features)


@app.command(SparkJob.ALERT_DETECTION.value)
def alert_detection(
    rules: Annotated[
        list[Path],
        typer.Option("--rules", help="AlertRule files or folders (repeatable)."),
    ],
    allow_no_rules: Annotated[
        bool,
        typer.Option(help="Run with no rule while the folders hold none (an empty ConfigMap)."),
    ] = False,
) -> JobRequest:
    """Alert detection on the pipeline's topic until stopped (``finlake pipeline run alerts``)."""
    pipeline = load_pipeline(os.environ)
    if pipeline.spec.flow is not PipelineFlow.MARKET:
        raise ConfigurationError(
            f"{pipeline.name}: a {pipeline.spec.flow.value} pipeline; alert detection reads a "
            "market pipeline's topic (spec.flow)"
        )
    return JobRequest(
        SparkJob.ALERT_DETECTION, pipeline, rules=tuple(rules), allow_no_rules=allow_no_rules
    )


@app.command(SparkJob.MAINTENANCE.value)
def maintenance(
    tables: Annotated[list[str], typer.Argument(help="Tables to compact, namespace.name.")],
    target_file_size_mb: Annotated[int, typer.Option(min=16, max=1024)] = 128,
    snapshot_retention: Annotated[str, typer.Option(help="Expire older snapshots.")] = "7d",
) -> JobRequest:
    """Daily compaction and snapshot expiry of the pipeline's tables."""
    pipeline = load_pipeline(os.environ)
    known = set(pipeline.spec.maintained_tables())
    for table in tables:
        if not re.fullmatch(TABLE, table) or table not in known:
            raise typer.BadParameter(f"{table!r} is not a table of pipeline {pipeline.name}")
    return JobRequest(
        SparkJob.MAINTENANCE,
        pipeline,
        tables=tuple(tables),
        target_file_size_mb=target_file_size_mb,
        snapshot_retention=_duration(snapshot_retention),
    )


def parse_job(arguments: Sequence[str]) -> JobRequest:
    """The job the SparkApplication's arguments ask for (usage errors propagate)."""
    command = typer.main.get_command(app)
    request: Any = command.main(args=list(arguments), prog_name="main.py", standalone_mode=False)
    if not isinstance(request, JobRequest):  # --help printed, nothing to run
        raise SystemExit(0)
    return request


def run_job(request: JobRequest) -> None:
    """Run the job (Spark starts here, not while parsing)."""
    from prometheus_client import start_http_server

    from finlake_spark.config import SparkAppSettings

    settings = SparkAppSettings()
    if request.job is SparkJob.STREAM:
        from finlake_spark.jobs import market_stream as stream

        if settings.market.metrics_port:
            start_http_server(settings.market.metrics_port, addr=settings.market.metrics_host)
        stream.run(settings, once=False, expectations=request.pipeline.spec.expectations)
    elif request.job is SparkJob.BATCH:
        from finlake_spark.jobs import market_batch as batch

        batch.run(settings, lookback=request.lookback)
    elif request.job is SparkJob.TRANSACTIONS_BATCH:
        run_transactions_batch(settings, request)
    elif request.job is SparkJob.ALERT_DETECTION:
        run_alert_detection(request)
    else:
        from finlake_spark.jobs import maintenance as upkeep

        upkeep.run(
            settings,
            tables=request.tables,
            target_file_size_mb=request.target_file_size_mb,
            snapshot_retention=request.snapshot_retention,
        )


def run_transactions_batch(settings: SparkAppSettings, request: JobRequest) -> None:
    """One transactions batch run, then the feature refresh (``finlake pipeline run transactions
    --once``). A refresh that cannot run (no ml extra in the image) or fails is reported on
    stdout and never fails the job: the batch has committed, the next run refreshes again."""
    from finlake_spark.jobs import transactions_schedule

    transactions_schedule.run_and_refresh(
        settings,
        lambda line: print(line, flush=True),  # noqa: T201 (the driver's log is its stdout)
        features=request.features,
        hour=request.hour,
    )


def detection_settings(request: JobRequest) -> DetectionAppSettings:
    """The detection job's settings: FINLAKE_* (the operator sets FINLAKE_DETECTION__* from the
    pipeline) plus the request's rules."""
    from finlake_spark.alerts.config import DetectionAppSettings

    settings = DetectionAppSettings()
    detection = settings.detection.model_copy(
        update={"rules": list(request.rules), "allow_no_rules": request.allow_no_rules}
    )
    return settings.model_copy(update={"detection": detection})


def run_alert_detection(request: JobRequest) -> None:
    """Alert detection until SIGTERM; its /metrics where the settings say."""
    from prometheus_client import start_http_server

    from finlake_spark.jobs import alert_detection as detection

    settings = detection_settings(request)
    if settings.detection.metrics_port:
        start_http_server(settings.detection.metrics_port, addr=settings.detection.metrics_host)
    detection.run(settings)


def main(arguments: Sequence[str] | None = None) -> None:
    """Parse, then run; a bad argument or pipeline is one line on stderr and exit code 2."""
    try:
        request = parse_job(sys.argv[1:] if arguments is None else arguments)
    except (typer.TyperException, ConfigurationError) as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None
    run_job(request)


if __name__ == "__main__":
    main()
