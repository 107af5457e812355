"""``finlake pipeline``: run the Spark pipelines locally."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from prometheus_client import start_http_server
from rich.console import Console

from finlake.stack.kafka import require_broker
from finlake_spark.config import SparkAppSettings

app = typer.Typer(help="Run the Spark pipelines locally (market stream, transactions batch).")
console = Console()


class Pipeline(StrEnum):
    """The pipelines that can run."""

    MARKET = "market"


@app.command("run")
def run_pipeline(
    pipeline: Annotated[Pipeline, typer.Argument(help="Which pipeline.")],
    once: Annotated[
        bool, typer.Option("--once", help="Process everything available in Kafka, then exit 0.")
    ] = False,
) -> None:
    """Run a pipeline continuously, or once over what is available."""
    from finlake_spark.jobs import market_stream

    settings = SparkAppSettings()
    require_broker(settings.kafka.bootstrap)
    if settings.market.metrics_port:
        start_http_server(settings.market.metrics_port, addr="127.0.0.1")
    console.print(f"{pipeline.value}: {'draining Kafka once' if once else 'running until stopped'}")
    market_stream.run(settings, once=once)
    console.print(f"{pipeline.value}: done")
