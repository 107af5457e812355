"""``finlake ingest``: publish market ticks to Kafka from Yahoo Finance, a replay file or the simulator."""

import typer

app = typer.Typer(help="Publish market ticks to Kafka: yahoo, replay FILE or simulate.")
