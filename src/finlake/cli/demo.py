"""``finlake demo``: the three flows end to end on the embedded defaults: market data (Kafka ->
bronze -> silver -> gold), alerts on the same stream, and transactions (upload -> batch ->
features -> model -> predictions)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from finlake.cli.output import console
from finlake.config import FinlakeSettings, get_settings
from finlake.contracts.models import MarketTick
from finlake.contracts.topics import MARKET_DATA
from finlake.errors import FinlakeError
from finlake.kafka_io import publish
from finlake.query import LakeQuery, QueryError
from finlake.simulate import Injection, parse_injection, random_walk_ticks
from finlake.stack.manager import Stack

DEMO_SYMBOLS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "BRK-B", "JPM", "V",
    "UNH", "XOM", "JNJ", "WMT", "MA", "PG", "HD", "CVX", "KO", "PEP",
)  # fmt: skip


# Patterns forced into the simulated stream so that examples/alert-rules.yaml fires (flow 3).
DEMO_INJECTIONS = (
    "price_cross:AAPL@20m:200",
    "percent_move:MSFT@30m:+4%",
    "return_zscore:NVDA@50m:+3%",
    "volume_surge:AMZN@60m:x10",
)
DEMO_RULES = Path("examples/alert-rules.yaml")
TICK_INTERVAL = timedelta(seconds=10)
"""Event time between two simulated ticks of a symbol."""


def troubled_ticks(clean: list[MarketTick]) -> list[MarketTick]:
    """A few ticks that silver must catch: nulls, non-positive prices, duplicates."""
    first = clean[0]
    return [
        first,  # an exact duplicate
        first.model_copy(update={"price": None}),
        first.model_copy(
            update={"volume": None, "timestamp": first.timestamp + timedelta(seconds=1)}
        ),
        first.model_copy(
            update={"price": -1.0, "timestamp": first.timestamp + timedelta(seconds=2)}
        ),
    ]


def _run_pipeline(settings: FinlakeSettings, name: str, *options: str) -> None:
    command = [sys.executable, "-m", "finlake.cli.main", "pipeline", "run", name, "--once"]
    done = subprocess.run(
        [*command, *options], env=dict(os.environ), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        log = settings.home.resolve() / "logs" / f"demo-{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(done.stdout + done.stderr)
        raise FinlakeError(f"the {name} pipeline failed; its output is in {log}")


def _alerts(settings: FinlakeSettings, lake: LakeQuery, rules: Path) -> None:
    if not rules.is_file():
        console.print(f"alerts: skipped ({rules} not found; run the demo from the repository)")
        return
    console.print(
        f"running alert detection once (Spark: market-data -> rules of {rules} -> "
        "alerts topic + alerts.events)"
    )
    try:
        _run_pipeline(settings, "alerts", "--rules", str(rules))
    except FinlakeError as error:
        # Seen once on a loaded machine: Spark's Python worker for transformWithState failed to
        # connect back at start-up. The checkpoint makes a second run pick up where it stopped.
        console.print(f"alerts: {error}; running it once more")
        _run_pipeline(settings, "alerts", "--rules", str(rules))
    _show(
        lake,
        "SELECT rule, kind, symbol, severity, window_start, round(value, 2) AS value, threshold "
        "FROM alerts.events ORDER BY window_start, rule, symbol",
        "alerts fired on the simulated stream",
    )


def _transactions(settings: FinlakeSettings) -> None:
    try:  # the ml extra (Feast, MLflow, scikit-learn) is optional for the core
        from finlake.ml.demo import run_transactions_demo
    except ImportError as error:
        console.print(f"transactions: skipped (install finlake[ml]: {error})")
        return
    console.rule("flow 2: transactions")
    # MLflow narrates every database migration at INFO, and its SQL store trips a SQLAlchemy 2.1
    # deprecation; neither is news to someone running the demo.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The ``noload`` loader strategy")
        run_transactions_demo(settings, console)


def _injections(symbols: int) -> list[Injection]:
    chosen = set(DEMO_SYMBOLS[:symbols])
    parsed = [parse_injection(text) for text in DEMO_INJECTIONS]
    return [injection for injection in parsed if injection.symbol in chosen]


def _layer_counts(lake: LakeQuery) -> Table:
    table = Table("layer", "table", "rows", title="the lake after the run")
    for layer, name in (
        ("bronze", "market.raw"), ("dead letter", "market.dead_letter"),
        ("silver", "market.cleaned"), ("quarantine", "market.quarantine"),
        ("gold", "market.ohlc_1m"), ("gold", "market.ohlc_1h"),
    ):  # fmt: skip
        table.add_row(layer, name, str(lake.run(f"SELECT count(*) FROM {name}")[1][0][0]))
    return table


def _show(lake: LakeQuery, sql: str, title: str) -> None:
    columns, rows = lake.run(sql)
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(str(value) for value in row))
    console.print(table)


def finlake_executable() -> str:
    """This finlake's path, relative when under the current folder: ``.venv/bin/finlake`` after
    ``make`` (which may install uv off the PATH, so ``uv run`` is not what to print)."""
    path = Path(sys.executable).parent / "finlake"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def after_earlier_runs(settings: FinlakeSettings, start: datetime) -> datetime:
    """``start``, or just after the newest tick in silver when an earlier demo got further.

    Silver judges lateness against the newest event time it has seen: ticks of a second run
    over the same hours would all be quarantined as late.
    """
    try:
        [(newest,)] = LakeQuery(settings).run("SELECT max(timestamp) FROM market.cleaned")[1]
    except QueryError:  # no market.cleaned yet
        return start
    if newest is None or newest.astimezone(UTC) < start:
        return start
    following: datetime = newest.astimezone(UTC) + TICK_INTERVAL
    console.print(
        f"silver holds ticks up to {newest:%Y-%m-%d %H:%M:%S} UTC from an earlier run: this "
        "run's event time starts after them (older ticks would be quarantined as late)"
    )
    return following


def next_commands() -> list[str]:
    """What the demo suggests next, each runnable as printed from the repository root."""
    cli = finlake_executable()
    commands = (
        ("query \"SELECT * FROM market.ohlc_1m WHERE symbol = 'AAPL'\"", ""),
        ('query "SELECT * FROM market.pipeline_runs" --format json', ""),
        ("api serve", "dashboard + query API (prints URL, key)"),
        ("ingest simulate --help", "publish more ticks (--inject patterns)"),
        ("alerts serve --rules examples/alert-rules.yaml", "deliver the alerts"),
        ("pipeline run market", "run the stream continuously"),
        ("stack status", f"what runs; `{cli} stack down` stops it"),
    )
    return [
        f"{cli} {command.ljust(26)}  # {comment}" if comment else f"{cli} {command}"
        for command, comment in commands
    ]


def demo(
    symbols: Annotated[int, typer.Option(min=1, max=20, help="How many symbols.")] = 20,
    hours: Annotated[float, typer.Option(help="Hours of event time to simulate.")] = 3.0,
    seed: Annotated[int, typer.Option(help="Random seed of the simulator.")] = 7,
    rules: Annotated[
        Path, typer.Option(help="AlertRule file the detection step evaluates.")
    ] = DEMO_RULES,
    transactions: Annotated[
        bool, typer.Option(help="Also run the transaction flow (generate ... predictions).")
    ] = True,
) -> None:
    """Start the stack, run the market flow, its alerts and the transaction flow; show each."""
    settings = get_settings()
    began = time.monotonic()
    Stack(settings).up(report=console.print)
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = after_earlier_runs(settings, this_hour - timedelta(hours=hours))
    steps = int(hours * 3600 / TICK_INTERVAL.total_seconds())
    clean = list(
        random_walk_ticks(
            DEMO_SYMBOLS[:symbols],
            count=steps,
            seed=seed,
            start=start,
            interval=TICK_INTERVAL,
            injections=_injections(symbols),
        )
    )
    records = clean + troubled_ticks(clean)
    result = publish(settings, MARKET_DATA, records, key_field="symbol")
    console.print(
        f"published {result.delivered} ticks ({symbols} symbols, {hours:g} h of event time from "
        f"{start:%Y-%m-%d %H:%M} UTC) to '{MARKET_DATA}'; failed {result.failed}"
    )
    console.print(
        "running the market pipeline once (Spark local mode: Kafka -> bronze -> silver -> gold)"
    )
    _run_pipeline(settings, "market")
    lake = LakeQuery(settings)
    console.print(_layer_counts(lake))
    _show(
        lake,
        "SELECT rule, count(*) AS rows FROM market.quarantine GROUP BY rule ORDER BY rule",
        "quarantine reasons",
    )
    _show(
        lake,
        "SELECT symbol, window_start, open, high, low, close, volume, trade_count, vwap "
        "FROM market.ohlc_1h ORDER BY window_start DESC, symbol LIMIT 6",
        "gold: hourly OHLC",
    )
    _alerts(settings, lake, rules)
    if transactions:
        _transactions(settings)
    console.print(f"done in {time.monotonic() - began:.0f}s. Next:")
    for command in next_commands():
        console.print(f"  {command}", highlight=False, markup=False)
