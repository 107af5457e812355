"""`finlake stack up --with trino`: Spark writes; Trino and PyIceberg read the same rows."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from finlake.config import FinlakeSettings
from finlake.contracts.models import MarketTick
from finlake.contracts.topics import TopicSpec
from finlake.errors import JavaNotFoundError, PortInUseError
from finlake.kafka_io import publish
from finlake.lake.connection import TRINO_PROFILE, lake_connection, open_catalog, read_profile
from finlake.query import TableNotFoundError
from finlake.stack.kafka import create_topics
from finlake.stack.manager import Stack
from finlake.trino_engine import TrinoEngine
from tests.integration.conftest import empty_lake, trino_settings
from tests.integration.pipeline import pipeline_env, run_once

TOPIC = "trino-profile-ticks"
START = datetime(2026, 11, 25, 14, 58, tzinfo=UTC)  # crosses an hour boundary
SYMBOLS = ("AAA", "BBB")
BAR_COLUMNS = "symbol, window_start, window_end, open, high, low, close, volume, trade_count, vwap"


def ticks() -> list[MarketTick]:
    out = []
    for step in range(18):  # every 20 s for 6 minutes
        for offset, symbol in enumerate(SYMBOLS):
            at = START + step * timedelta(seconds=20)
            out.append(
                MarketTick(
                    symbol=symbol,
                    timestamp=at,
                    price=100.0 + offset * 50 + (step % 7) * 0.25,
                    volume=10 * (step + 1),
                    source="replay",
                    produced_at=at,
                )
            )
    return out


@pytest.fixture(scope="module")
def trino_stack(trino_profile: Stack) -> Stack:
    """The session's trino-profile stack, with the market flow run once into its emptied lake."""
    stack = trino_profile
    settings = stack.settings
    empty_lake(settings)
    create_topics(settings.kafka.bootstrap, [TopicSpec(TOPIC, 2, 86_400_000, "symbol", None)])
    assert publish(settings, TOPIC, ticks(), key_field="symbol").failed == 0
    said = run_once(pipeline_env(settings, TOPIC, FINLAKE_SPARK__DRIVER_MEMORY="1g"))
    # Every later test needs the rows in the lake: without them, say what the pipeline said.
    layers = {
        table: len(rows_by_pyiceberg(settings, table, "kafka_offset"))
        for table in ("market.raw", "market.dead_letter", "market.cleaned", "market.quarantine")
    }
    assert layers["market.raw"] == len(ticks()), f"{layers}; the pipeline said:\n{said[-6000:]}"
    return stack


def rows_by_pyiceberg(settings: FinlakeSettings, table: str, columns: str) -> list[tuple[Any, ...]]:
    names = [name.strip() for name in columns.split(",")]
    data = open_catalog(settings).load_table(table).scan(selected_fields=tuple(names)).to_arrow()
    return sorted(tuple(row[name] for name in names) for row in data.to_pylist())


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("market.ohlc_1m", BAR_COLUMNS),
        ("market.ohlc_1h", BAR_COLUMNS),
        ("market.cleaned", "symbol, timestamp, price, volume, source"),
    ],
)
def test_spark_written_rows_read_the_same_through_trino_and_pyiceberg(
    trino_stack: Stack, table: str, columns: str
) -> None:
    settings = trino_stack.settings
    names, trino_rows = TrinoEngine(settings.trino).query(f"SELECT {columns} FROM {table}")
    iceberg_rows = rows_by_pyiceberg(settings, table, columns)
    assert names == [name.strip() for name in columns.split(",")]
    assert iceberg_rows  # the pipeline wrote something
    assert sorted(trino_rows) == iceberg_rows


def test_the_shared_lake_is_postgresql_and_s3(trino_stack: Stack) -> None:
    settings = trino_stack.settings
    lake = lake_connection(settings)
    assert lake.jdbc_url == f"jdbc:postgresql://127.0.0.1:{settings.postgres.port}/lake"
    assert lake.warehouse == "s3://lake/warehouse"
    table = open_catalog(settings).load_table("market.ohlc_1m")
    assert table.location() == "s3://lake/warehouse/market/metrics/ohlc_1m"
    assert not (settings.home / "catalog.db").exists()
    assert not (settings.home / "warehouse").exists()
    engine = TrinoEngine(settings.trino)
    assert engine.snapshot_id("market.ohlc_1m") == table.metadata.current_snapshot_id


def test_trino_binds_parameters(trino_stack: Stack) -> None:
    engine = TrinoEngine(trino_stack.settings.trino)
    sql = "SELECT count(*) FROM market.cleaned WHERE symbol = ? AND volume >= ?"
    assert engine.query(sql, ["AAA", 0]) == (["_col0"], [(18,)])
    assert engine.query(sql, ["AAA' OR '1'='1", 0])[1] == [(0,)]
    with pytest.raises(TableNotFoundError, match="nope"):
        engine.query("SELECT * FROM market.nope")


def test_status_and_a_later_stack_know_the_profile(trino_stack: Stack) -> None:
    rows = trino_stack.status()
    assert [row.name for row in rows] == ["kafka", "registry", "postgres", "seaweedfs", "trino"]
    assert all(row.state == "running" and row.healthy for row in rows)
    later = Stack(trino_stack.settings)  # as `finlake stack status` would build it
    assert later.profile == TRINO_PROFILE
    recorded = read_profile(trino_stack.settings.home)
    assert recorded is not None
    assert (trino_stack.settings.home / "profile.json").stat().st_mode & 0o077 == 0
    messages: list[str] = []
    later.up(report=messages.append)  # a no-op
    assert messages[-1] == f"trino: already running at {trino_stack.settings.trino.url}"


def test_default_home_stays_sqlite_and_local_disk(tmp_path: Path) -> None:
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    lake = lake_connection(settings)
    assert lake.jdbc_url == f"jdbc:sqlite:{tmp_path.resolve() / 'catalog.db'}"
    assert lake.warehouse == (tmp_path.resolve() / "warehouse").as_uri()
    assert lake.s3 is None
    assert [service.name for service in Stack(settings).services] == ["kafka", "registry"]


def test_trino_needs_jdk_24(tmp_path: Path) -> None:
    settings = trino_settings(tmp_path)
    settings = settings.model_copy(
        update={"trino": settings.trino.model_copy(update={"java_home": _jdk_17()})}
    )
    with pytest.raises(JavaNotFoundError, match=r"Trino 476 needs Java 24\+"):
        Stack(settings, with_profile=TRINO_PROFILE).up()


def test_a_taken_trino_profile_port_fails_before_anything_starts(tmp_path: Path) -> None:
    settings = trino_settings(tmp_path)
    stack = Stack(settings, with_profile=TRINO_PROFILE)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", settings.postgres.port))
        holder.listen()
        with pytest.raises(PortInUseError, match="FINLAKE_POSTGRES__PORT"):
            stack.up()
    assert all(row.state == "stopped" for row in stack.status())


def _jdk_17() -> Path:
    for home in sorted(Path("/usr/lib/jvm").glob("*17*")):
        if (home / "bin" / "java").exists():
            return home
    pytest.skip("no JDK 17 under /usr/lib/jvm to stand for a too-old JDK")
