"""``finlake demo``: the main job on the embedded defaults."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from finlake.cli.output import console
from finlake.config import get_settings
from finlake.contracts.models import MarketTick
from finlake.contracts.topics import MARKET_DATA
from finlake.kafka_io import publish, read_back
from finlake.simulate import DEFAULT_SYMBOLS, random_walk_ticks
from finlake.stack.manager import Stack


def demo(
    ticks: Annotated[int, typer.Option(help="Simulated ticks per symbol.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed of the simulator.")] = 7,
) -> None:
    """Start the local stack, publish simulated ticks through Kafka in Avro, read them back."""
    settings = get_settings()
    Stack(settings).up(report=console.print)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=ticks)
    records = list(random_walk_ticks(DEFAULT_SYMBOLS, count=ticks, seed=seed, start=start))
    began = time.monotonic()
    result = publish(settings, MARKET_DATA, records, key_field="symbol")
    published = time.monotonic() - began
    decoded = read_back(settings, MARKET_DATA, MarketTick, result.offsets)
    table = Table("symbol", "ticks", "first", "last", "low", "high", title="read back from Kafka")
    for symbol in DEFAULT_SYMBOLS:
        rows = sorted((t for t in decoded if t.symbol == symbol), key=lambda t: t.timestamp)
        prices = [t.price for t in rows if t.price is not None]
        table.add_row(
            symbol,
            str(len(rows)),
            f"{prices[0]:.2f}",
            f"{prices[-1]:.2f}",
            f"{min(prices):.2f}",
            f"{max(prices):.2f}",
        )
    console.print(table)
    same = sorted(decoded, key=_order) == sorted(records, key=_order)
    console.print(
        f"published {result.delivered} MarketTick records to '{MARKET_DATA}' in {published:.2f}s "
        f"(Avro, Confluent wire format, schema in {settings.registry.ccompat_url}); "
        f"failed {result.failed}; read back {len(decoded)}, "
        + (
            "[green]identical to what was sent[/]"
            if same
            else "[red]DIFFERENT from what was sent[/]"
        )
    )
    console.print("The stack keeps running: `finlake stack status`, `finlake stack down`.")
    if not same or result.failed:
        raise typer.Exit(1)


def _order(tick: MarketTick) -> tuple[str, datetime]:
    return tick.symbol, tick.timestamp
