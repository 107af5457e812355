"""``finlake pipeline``: run the Spark pipelines locally."""

import typer

app = typer.Typer(help="Run the Spark pipelines locally (market stream, transactions batch).")
