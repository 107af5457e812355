"""``finlake pipeline``: run the Spark pipelines locally."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from prometheus_client import start_http_server
from rich.console import Console

from finlake.quality import MARKET_TICK_EXPECTATIONS, Expectation
from finlake.stack.kafka import require_broker
from finlake_spark.config import SparkAppSettings

app = typer.Typer(help="Run the Spark pipelines locally (market stream, transactions batch).")
console = Console()


class Pipeline(StrEnum):
    """The pipelines that can run."""

    MARKET = "market"
    TRANSACTIONS = "transactions"
    ALERTS = "alerts"


class Schedule(StrEnum):
    """How often a batch pipeline runs."""

    HOURLY = "hourly"


@app.command("run")
def run_pipeline(
    pipeline: Annotated[Pipeline, typer.Argument(help="Which pipeline.")],
    once: Annotated[
        bool, typer.Option("--once", help="Process what is available (Kafka, bronze), then exit 0.")
    ] = False,
    schedule: Annotated[
        Schedule | None,
        typer.Option(help="transactions: run now and then every hour (default: once)."),
    ] = None,
    hour: Annotated[
        datetime | None,
        typer.Option(
            help="transactions: process again the bronze received in this hour (UTC), e.g. "
            "2026-05-01T13:00; idempotent.",
            formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        ),
    ] = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", help="alerts: AlertRule files or folders (repeatable)."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="alerts: stop after so many seconds.", min=0)
    ] = None,
    pipeline_file: Annotated[
        Path | None,
        typer.Option(
            "--pipeline",
            help="market: a MedallionPipeline file; its topic, trigger, lateness and "
            "expectations (with their drop / quarantine / fail actions) are used, as in a cluster.",
        ),
    ] = None,
    features: Annotated[
        bool,
        typer.Option(
            help="transactions: after a run that changed silver, refresh the fraud features and "
            "materialize them to the online store (needs the ml extra)."
        ),
    ] = True,
) -> None:
    """Run a pipeline continuously, or once over what is available."""
    if pipeline is Pipeline.ALERTS:
        _run_alerts(once=once, rules=rules or [], duration_s=duration)
        return
    settings = SparkAppSettings()
    if pipeline is Pipeline.TRANSACTIONS:
        _run_transactions(settings, once=once, schedule=schedule, hour=hour, features=features)
        return
    from finlake_spark.jobs import market_stream

    expectations: tuple[Expectation, ...] = MARKET_TICK_EXPECTATIONS
    if pipeline_file is not None:
        from finlake_spark.main import PIPELINE_FILE_ENV, check_market_tables, load_pipeline

        resource = load_pipeline({PIPELINE_FILE_ENV: str(pipeline_file)})
        check_market_tables(resource)
        spec = resource.spec
        settings.market = settings.market.model_copy(
            update={
                "topic": spec.source_topic,
                "trigger_interval_s": spec.trigger.total_seconds(),
                "allowed_lateness_s": int(spec.watermark.total_seconds()),
                "max_offsets_per_trigger": spec.max_offsets_per_trigger,
            }
        )
        expectations = tuple(spec.expectations)
        console.print(
            f"{pipeline.value}: MedallionPipeline {resource.name} from {pipeline_file}",
            highlight=False,
            soft_wrap=True,
        )
    require_broker(settings.kafka.bootstrap)
    if settings.market.metrics_port:
        start_http_server(settings.market.metrics_port, addr=settings.market.metrics_host)
    console.print(f"{pipeline.value}: {'draining Kafka once' if once else 'running until stopped'}")
    market_stream.run(settings, once=once, expectations=expectations)
    console.print(f"{pipeline.value}: done")


def _run_transactions(
    settings: SparkAppSettings,
    *,
    once: bool,
    schedule: Schedule | None,
    hour: datetime | None,
    features: bool,
) -> None:
    from finlake_spark.jobs import transactions_schedule

    if schedule is not None and (once or hour is not None):
        raise typer.BadParameter("--schedule runs until stopped; leave out --once and --hour")
    if schedule is Schedule.HOURLY:
        console.print("transactions: running now and at the top of every hour (Ctrl-C stops)")
        transactions_schedule.run_hourly(settings, report=console.print, features=features)
        return
    moment = hour.replace(tzinfo=UTC) if hour is not None and hour.tzinfo is None else hour
    transactions_schedule.run_and_refresh(
        settings, lambda line: console.print(line, highlight=False), features=features, hour=moment
    )


def _run_alerts(*, once: bool, rules: list[Path], duration_s: float | None) -> None:
    from finlake_spark.alerts.config import DetectionAppSettings
    from finlake_spark.jobs import alert_detection

    settings = DetectionAppSettings()
    require_broker(settings.kafka.bootstrap)
    if settings.detection.metrics_port:
        start_http_server(settings.detection.metrics_port, addr=settings.detection.metrics_host)
    console.print(f"alerts: {'draining Kafka once' if once else 'running until stopped'}")
    alert_detection.run(settings, once=once, duration_s=duration_s, rules=rules)
    console.print("alerts: done")
