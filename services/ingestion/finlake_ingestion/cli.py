"""``finlake ingest``: publish market ticks from Yahoo Finance, a replay file or the simulator."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from finlake.errors import ConfigurationError
from finlake.simulate import parse_injection
from finlake_ingestion.config import IngestionSettings, get_settings
from finlake_ingestion.logs import configure_logging
from finlake_ingestion.metrics import IngestionMetrics
from finlake_ingestion.pacing import parse_duration, parse_pace
from finlake_ingestion.service import SourceFactory, execute, yahoo_source
from finlake_ingestion.sources.replay import ReplaySource
from finlake_ingestion.sources.simulate import SimulateSource, simulated_symbols
from finlake_ingestion.worker import RunReport

app = typer.Typer(help="Publish market ticks to Kafka: yahoo, replay FILE or simulate.")
console = Console(soft_wrap=True)

Serve = Annotated[bool, typer.Option("--serve", help="Also serve /healthz, /readyz and /metrics.")]
Port = Annotated[
    int | None, typer.Option(help="Port of /healthz, /readyz, /metrics (default from settings).")
]


def _settings(port: int | None) -> IngestionSettings:
    settings = get_settings()
    configure_logging(settings.ingestion.log_level)
    if port is None:
        return settings
    options = settings.ingestion.model_copy(update={"http_port": port})
    return settings.model_copy(update={"ingestion": options})


def _finish(settings: IngestionSettings, build: SourceFactory, serve: bool) -> None:
    report = execute(settings, build, serve=serve)
    _print_report(report, settings.ingestion.topic)
    if report.failed:
        raise typer.Exit(1)


def _print_report(report: RunReport, topic: str) -> None:
    rate = report.delivered / report.seconds if report.seconds > 0 else 0.0
    colour = "red" if report.failed else "green"
    console.print(
        f"{report.source}: published {report.delivered} records to '{topic}', "
        f"[{colour}]failed {report.failed}[/] ({report.seconds:.2f}s, {rate:,.0f} records/s)"
        + (" [yellow]stopped by signal[/]" if report.stopped else ""),
        highlight=False,
    )
    for error in report.errors[:5]:
        console.print(f"  delivery error: {error}", markup=False, highlight=False)


@app.command()
def yahoo(
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated tickers (default FINLAKE_YAHOO__SYMBOLS).")
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="Poll interval, e.g. 30s (default 30s).")
    ] = None,
    lookback: Annotated[
        str | None, typer.Option(help="History for symbols seen for the first time, e.g. 1h.")
    ] = None,
    budget: Annotated[int | None, typer.Option(help="Requests per minute to Yahoo.")] = None,
    serve: Serve = False,
    port: Port = None,
) -> None:
    """Poll Yahoo Finance until SIGTERM; each closed bar is published once."""
    settings = _settings(port)
    update: dict[str, object] = {}
    if symbols is not None:
        update["symbols"] = tuple(s.strip().upper() for s in symbols.split(",") if s.strip())
    if every is not None:
        update["poll_interval_s"] = parse_duration(every).total_seconds()
    if lookback is not None:
        update["lookback_s"] = parse_duration(lookback).total_seconds()
    if budget is not None:
        update["requests_per_minute"] = budget
    yahoo_settings = type(settings.yahoo).model_validate(settings.yahoo.model_dump() | update)
    settings = settings.model_copy(update={"yahoo": yahoo_settings})
    _finish(settings, yahoo_source(settings), serve)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet: symbol,timestamp,price,volume,...")],
    pace: Annotated[
        str, typer.Option(help="fast (as fast as possible), original, or a speed-up like 10x.")
    ] = "fast",
    check: Annotated[
        bool, typer.Option("--check", help="Only validate the file; publish nothing.")
    ] = False,
    serve: Serve = False,
    port: Port = None,
) -> None:
    """Validate FILE, then publish its ticks (nothing is published if any line is bad)."""
    speed = parse_pace(pace)
    settings = _settings(port)
    if check:
        summary = ReplaySource(file, IngestionMetrics()).validate()
        console.print(
            f"{file}: {summary.rows} valid rows from {summary.first} to {summary.last}; "
            f"extra columns: {', '.join(summary.extra_columns) or 'none'}",
            highlight=False,
        )
        return
    _finish(settings, lambda metrics, _: ReplaySource(file, metrics, speed=speed), serve)


@app.command()
def simulate(
    symbols: Annotated[int, typer.Option(help="How many symbols.", min=1)] = 5,
    rate: Annotated[
        float | None,
        typer.Option(help="Ticks/s over all symbols; 0 = as fast as possible.", min=0),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after so many seconds (with --rate).", min=0)
    ] = None,
    count: Annotated[int | None, typer.Option(help="Ticks per symbol, then stop.", min=1)] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same prices).")] = 7,
    event_interval: Annotated[
        str | None,
        typer.Option(help="Event-time step, e.g. 1s or 1m; published as fast as --rate allows."),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Event time of the first tick, ISO-8601 (default now).")
    ] = None,
    inject: Annotated[
        list[str] | None,
        typer.Option(
            help="A pattern a rule of that kind detects, KIND:SYMBOL@AT\\[:AMOUNT]\\[/DURATION] "
            "(repeatable), e.g. price_cross:AAPL@2m:150, percent_move:MSFT@5m:+4%, "
            "volume_surge:NVDA@10m:x8/2m, gap:AMZN@0s:-3%.",
        ),
    ] = None,
    serve: Serve = False,
    port: Port = None,
) -> None:
    """Publish seeded random-walk ticks (the demo's source)."""
    injections = [parse_injection(text) for text in inject or []]
    step = parse_duration(event_interval) if event_interval is not None else None
    if rate is None:
        rate = 0.0 if step is not None else 100.0
    if count is None and duration is None and not serve:
        duration = 60.0 if rate > 0 else None
        if duration is None:
            raise ConfigurationError("with --rate 0, give --count (or --duration) to end the run")
    first = _parse_start(start)
    settings = _settings(port)
    names = simulated_symbols(symbols)
    for injection in injections:
        if injection.symbol not in names:
            raise ConfigurationError(
                f"--inject names {injection.symbol}, which is not simulated ({', '.join(names)})"
            )
    _finish(
        settings,
        lambda _metrics, _: SimulateSource(
            names,
            rate=rate,
            seed=seed,
            count=count,
            duration_s=duration,
            start=first,
            event_interval=step,
            injections=injections,
        ),
        serve,
    )


def _parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(f"--start {text!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise ConfigurationError(f"--start {text!r} has no UTC offset; add Z or e.g. +02:00")
    return moment
