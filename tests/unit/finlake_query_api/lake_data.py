"""A realistic market lake written with PyIceberg (no Spark): bars, ticks, quarantine, runs.

Tables get the layout the Spark pipeline gives them (src/finlake/lake/tables.py): daily
partitions where the spec has ``days(column)``, rows sorted by the spec's sort order, and for
sorted tables row groups of about the size Spark writes (``row_group_bytes``), so the query
layer is measured and tested on the files it reads in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform

from finlake.config import FinlakeSettings
from finlake.lake.connection import lake_connection
from finlake.lake.table_spec import TableSpec
from finlake.lake.tables import MARKET_TABLES
from finlake.query import lake_catalog

NOW = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(10, 2)
SPECS = {spec.identifier: spec for spec in MARKET_TABLES}
# PyIceberg limits row groups by rows, Spark by bytes: ~24 bytes a sorted 1-minute bar in Parquet.
BAR_BYTES = 24


def _money(values: np.ndarray) -> pa.Array:
    return pa.array(np.round(values, 2)).cast(MONEY, safe=False)


def minute_bars(symbols: Sequence[str], start: datetime, minutes: int, seed: int = 7) -> pa.Table:
    """1-minute bars: a random walk per symbol, whole hours (``minutes`` a multiple of 60)."""
    rng = np.random.default_rng(seed)
    starts = np.datetime64(start.replace(tzinfo=None), "us") + np.arange(minutes).astype(
        "timedelta64[m]"
    )
    columns: dict[str, list[np.ndarray]] = {k: [] for k in
                                            ("o", "h", "l", "c", "v", "n", "s", "w")}  # fmt: skip
    for index, _ in enumerate(symbols):
        base = 50.0 + 40.0 * index
        close = base * np.exp(np.cumsum(rng.normal(0, 0.0008, minutes)))
        open_ = np.concatenate([[base], close[:-1]])
        spread = np.abs(rng.normal(0, 0.0005, minutes)) * close
        high = np.maximum(open_, close) + spread
        low = np.minimum(open_, close) - spread
        columns["o"].append(np.round(open_, 2))
        columns["c"].append(np.round(close, 2))
        columns["h"].append(np.round(high, 2) + 0.01)
        columns["l"].append(np.round(low, 2) - 0.01)
        columns["v"].append(rng.integers(100, 20_000, minutes))
        columns["n"].append(rng.integers(1, 60, minutes))
        columns["s"].append(starts)
        columns["w"].append((open_ + high + low + close) / 4)
    window_start = pa.array(np.concatenate(columns["s"])).cast(TS)
    return pa.table({
        "symbol": pa.array(np.repeat(np.array(symbols, dtype=object), minutes), pa.string()),
        "window_start": window_start,
        "window_end": pa.array(np.concatenate(columns["s"]) + np.timedelta64(1, "m")).cast(TS),
        "open": _money(np.concatenate(columns["o"])),
        "high": _money(np.concatenate(columns["h"])),
        "low": _money(np.concatenate(columns["l"])),
        "close": _money(np.concatenate(columns["c"])),
        "volume": pa.array(np.concatenate(columns["v"]), pa.int64()),
        "trade_count": pa.array(np.concatenate(columns["n"]), pa.int64()),
        "vwap": pa.array(np.round(np.concatenate(columns["w"]), 6)).cast(
            pa.decimal128(18, 6), safe=False
        ),
        "updated_at": pa.array(np.full(len(window_start), np.datetime64(NOW.replace(tzinfo=None),
                                                                         "us"))).cast(TS),
    })  # fmt: skip


def hour_bars(minutes: pa.Table) -> pa.Table:
    """1-hour bars from whole hours of 1-minute bars (open of the first, close of the last)."""

    def col(name: str) -> np.ndarray:
        return minutes.column(name).to_numpy().reshape(-1, 60)

    volume = col("volume").sum(axis=1)
    weighted = (col("vwap").astype(float) * col("volume")).sum(axis=1) / volume
    return pa.table({
        "symbol": pa.array(col("symbol")[:, 0], pa.string()),
        "window_start": pa.array(col("window_start")[:, 0]).cast(TS),
        "window_end": pa.array(col("window_end")[:, -1]).cast(TS),
        "open": _money(col("open")[:, 0].astype(float)),
        "high": _money(col("high").astype(float).max(axis=1)),
        "low": _money(col("low").astype(float).min(axis=1)),
        "close": _money(col("close")[:, -1].astype(float)),
        "volume": pa.array(volume, pa.int64()),
        "trade_count": pa.array(col("trade_count").sum(axis=1), pa.int64()),
        "vwap": pa.array(np.round(weighted, 6)).cast(pa.decimal128(18, 6), safe=False),
        "updated_at": pa.array(col("updated_at")[:, 0]).cast(TS),
    })  # fmt: skip


def ticks(symbols: Sequence[str], first: datetime, last: datetime) -> pa.Table:
    """Two silver ticks per symbol: the first and the latest."""
    rows = [(s, t) for s in symbols for t in (first, last)]
    return pa.table({
        "symbol": pa.array([s for s, _ in rows], pa.string()),
        "timestamp": pa.array([t for _, t in rows], TS),
        "price": _money(np.full(len(rows), 100.0)),
        "volume": pa.array([10] * len(rows), pa.int64()),
        "ingest_ts": pa.array([t for _, t in rows], TS),
    })  # fmt: skip


def quarantine(rules: dict[str, int], at: datetime) -> pa.Table:
    """Quarantined ticks: ``count`` rows for each rule."""
    names = [rule for rule, count in rules.items() for _ in range(count)]
    return pa.table({
        "symbol": pa.array(["AAPL"] * len(names), pa.string()),
        "timestamp": pa.array([at] * len(names), TS),
        "price": pa.array([-1.0] * len(names), pa.float64()),
        "rule": pa.array(names, pa.string()),
    })  # fmt: skip


def runs(at: datetime) -> pa.Table:
    """Two pipeline runs; the second is the latest."""
    return pa.table({
        "batch_id": pa.array([0, 1], pa.int64()),
        "watermark": pa.array([at - timedelta(minutes=12), at - timedelta(minutes=10)], TS),
        "max_event_time": pa.array([at - timedelta(minutes=2), at], TS),
        "rows_in": pa.array([100, 50], pa.int64()),
        "bronze_rows": pa.array([98, 50], pa.int64()),
        "dead_letter_rows": pa.array([2, 0], pa.int64()),
        "silver_rows": pa.array([90, 47], pa.int64()),
        "duplicate_rows": pa.array([5, 1], pa.int64()),
        "quarantined_rows": pa.array([3, 2], pa.int64()),
        "committed_at": pa.array([at - timedelta(minutes=1), at], TS),
    })  # fmt: skip


def _create(catalog: Catalog, name: str, schema: pa.Schema, location: str) -> Table:
    """The table ``name`` with the partitioning and sort order of its spec (if it has one)."""
    spec: TableSpec | None = SPECS.get(name)
    if catalog.table_exists(name) or spec is None:
        return catalog.create_table_if_not_exists(name, schema=schema, location=location)
    # Iceberg's Java writers (Spark) merge manifests by default; PyIceberg only when asked.
    properties = {"commit.manifest-merge.enabled": "true"}
    if spec.sort_by and spec.row_group_bytes:
        properties["write.parquet.row-group-limit"] = str(spec.row_group_bytes // BAR_BYTES)
    table = catalog.create_table(name, schema=schema, location=location, properties=properties)
    days = (spec.partition_by or "").removeprefix("days(").removesuffix(")")
    if spec.partition_by == f"days({days})" and days in schema.names:
        with table.update_spec() as update:
            update.add_field(days, DayTransform(), f"{days}_day")
    if spec.sort_by:
        with table.update_sort_order() as order:
            for column in spec.sort_by:
                order.asc(column, IdentityTransform())
    return table


def write(settings: FinlakeSettings, tables: dict[str, pa.Table]) -> None:
    """Create (if needed) and append each ``namespace.table`` in the lake ``settings`` use."""
    lake = lake_connection(settings)  # local disk, or the S3 warehouse of the trino profile
    if lake.is_local:
        settings.warehouse.mkdir(parents=True, exist_ok=True)
    catalog = lake_catalog(settings)
    catalog.create_namespace_if_not_exists("market")
    for name, data in tables.items():
        location = f"{lake.warehouse}/{name.replace('.', '/')}"
        table = _create(catalog, name, data.schema, location)
        schema = table.schema()
        order = [schema.find_column_name(field.source_id) for field in table.sort_order().fields]
        table.append(
            data.sort_by([(str(column), "ascending") for column in order]) if order else data
        )


def build_lake(settings: FinlakeSettings, symbols: Sequence[str] = ("AAPL", "MSFT")) -> None:
    """Ten days of bars up to NOW for ``symbols``, plus silver, quarantine, bronze and runs."""
    first = NOW - timedelta(days=10)
    bars = minute_bars(symbols, first, 10 * 24 * 60)
    write(settings, {
        "market.ohlc_1m": bars,
        "market.ohlc_1h": hour_bars(bars),
        "market.cleaned": ticks(symbols, first, NOW - timedelta(seconds=30)),
        "market.raw": ticks(symbols, first, NOW - timedelta(seconds=20)),
        "market.quarantine": quarantine({"price_positive": 3, "late": 2}, NOW - timedelta(hours=1)),
        "market.pipeline_runs": runs(NOW - timedelta(seconds=10)),
    })  # fmt: skip
