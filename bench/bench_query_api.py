"""Query API: p50/p99 of a 1-day 1-minute OHLC query, hot and from the lake, vs the engine alone;
requests/s of the cached endpoint vs a bare Starlette endpoint returning the same bytes.

Generates ``--symbols`` x ``--days`` of 1-minute gold bars (plus 1-hour bars) with PyIceberg in a
temp home, laid out as the pipeline leaves gold after daily compaction: daily partitions, one file
per day sorted by (symbol, window_start), ~1 MB row groups (tests/unit/finlake_query_api/lake_data).
The issue asks for a year x 500 symbols (263 M bars); the default here is scaled down (see --help)
because generating and writing that takes far longer than a bench run should (``--lake DIR``
builds it once and keeps it for later runs). Every
request goes through the full ASGI app in-process (httpx.ASGITransport): auth, rate limit, metrics.
Goals: p99 <= 25 ms from the lake, <= 5 ms hot; cached endpoint >= 50% of bare Starlette.

    uv run --frozen python bench/bench_query_api.py [--symbols 50] [--days 30] [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).parent.parent))

from finlake.query import DuckDBEngine, duckdb_connection, lake_catalog
from finlake_query_api.main import create_app
from tests.unit.finlake_query_api.conftest import API_KEY, api_settings
from tests.unit.finlake_query_api.lake_data import NOW, hour_bars, minute_bars, write

SQL = (
    "SELECT window_start, window_end, open, high, low, close, volume, trade_count, vwap "
    "FROM market.ohlc_1m WHERE symbol = ? AND window_start >= ? AND window_start < ? "
    "ORDER BY window_start LIMIT ?"
)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


async def timed_async(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def build(home: Path, symbols: int, days: int) -> int:
    """The gold tables in the layout of daily compaction: one sorted file per day (lake_data)."""
    names = [f"S{index:03d}" for index in range(symbols)]
    start = NOW - timedelta(days=days)
    settings = api_settings(home)
    step = max(1, 2_000_000 // (symbols * 1440))  # bounded memory: ~2 M bars per append
    for day in range(0, days, step):
        count = min(step, days - day)
        bars = minute_bars(names, start + timedelta(days=day), count * 1440, seed=day)
        write(settings, {"market.ohlc_1m": bars, "market.ohlc_1h": hour_bars(bars)})
    table = lake_catalog(settings).load_table("market.ohlc_1m")
    return len(table.inspect.files())


async def api_latency(home: Path, hot_days: int, params: dict[str, str], count: int) -> list[float]:
    # The response cache is off: these measure the hot tier and the lake, not the cache.
    settings = api_settings(
        home, hot_window_days=hot_days, rate_limit="10000000/minute", response_cache_entries=0
    )
    app = create_app(settings, clock=lambda: NOW)
    app.state.finlake.market.refresh()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        url = "/v1/symbols/S007/ohlc"
        headers = {"X-API-Key": API_KEY}
        first = await client.get(url, params=params, headers=headers)
        assert first.status_code == 200
        assert first.json()["source"] == ("hot" if hot_days else "lake")
        assert len(first.json()["bars"]) == 1440
        await timed_async(lambda: client.get(url, params=params, headers=headers), 20)
        return await timed_async(lambda: client.get(url, params=params, headers=headers), count)


async def throughput(home: Path, params: dict[str, str], seconds: float) -> tuple[float, float]:
    app = create_app(api_settings(home, rate_limit="10000000/minute"), clock=lambda: NOW)
    app.state.finlake.market.refresh()
    headers = {"X-API-Key": API_KEY}
    ours = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    body = (await ours.get("/v1/symbols/S007/ohlc", params=params, headers=headers)).content

    async def same_bytes(_: Request) -> Response:
        return Response(body, media_type="application/json")

    bare_app = Starlette(routes=[Route("/v1/symbols/S007/ohlc", same_bytes)])
    bare = httpx.AsyncClient(transport=httpx.ASGITransport(app=bare_app), base_url="http://bench")

    async def rate(client: httpx.AsyncClient) -> float:
        done, deadline = 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            response = await client.get("/v1/symbols/S007/ohlc", params=params, headers=headers)
            assert response.content == body
            done += 1
        return done / seconds

    await rate(ours), await rate(bare)  # warm-up
    result = await rate(ours), await rate(bare)
    await ours.aclose()
    await bare.aclose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50, help="symbols (issue: 500)")
    parser.add_argument("--days", type=int, default=30, help="days of 1m bars (issue: 365)")
    parser.add_argument("--requests", type=int, default=400, help="timed requests per case")
    parser.add_argument("--seconds", type=float, default=3.0, help="throughput window per app")
    parser.add_argument(
        "--lake", type=Path, help="build the lake in this folder and keep it; a later run with the "
        "same --symbols/--days reuses it (a year x 500 symbols takes ~10 min and 6.4 GB to build)",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="finlake-bench-api-") as folder:
        home = args.lake or Path(folder)
        marker = home / "bench-lake.json"
        size = {"symbols": args.symbols, "days": args.days}
        started = time.perf_counter()
        if marker.exists() and json.loads(marker.read_text()) == size:
            files = len(
                lake_catalog(api_settings(home)).load_table("market.ohlc_1m").inspect.files()
            )
            built = "reused"
        else:
            if args.lake is not None and args.lake.exists():
                shutil.rmtree(args.lake)  # another size, or a build that did not finish
            home.mkdir(parents=True, exist_ok=True)
            files = build(home, args.symbols, args.days)
            marker.write_text(json.dumps(size))
            built = f"built in {time.perf_counter() - started:.1f}s"
        bars = args.symbols * args.days * 1440
        print(f"lake: {bars:,} 1m bars ({args.symbols} symbols x {args.days} days, {files} files), "
              f"{built}")  # fmt: skip
        day = (NOW - timedelta(days=2), NOW - timedelta(days=1))
        params = {"interval": "1m", "start": day[0].isoformat(), "end": day[1].isoformat(),
                  "limit": "2000"}  # fmt: skip
        sql_params = ["S007", day[0], day[1], 2001]
        # The engine the API uses (finlake.query.DuckDBEngine.query_arrow, as the lake path of the
        # OHLC endpoint calls it), and plain DuckDB answering the same SQL through iceberg_scan
        # of the same snapshot (no file pruning), both Arrow out, timed alternately in one loop.
        engine = DuckDBEngine(api_settings(home), metadata_ttl_s=1.0)
        location = engine.catalog.load_table("market.ohlc_1m").metadata_location
        plain = duckdb_connection()
        plain.execute("CREATE SCHEMA market")
        plain.execute(f"CREATE VIEW market.ohlc_1m AS SELECT * FROM iceberg_scan('{location}')")
        assert engine.query(SQL, sql_params)[1] == plain.execute(SQL, sql_params).fetchall()
        engine_samples, plain_samples = [], []
        for _ in range(args.requests):
            engine_samples += timed(lambda: engine.query_arrow(SQL, sql_params), 1)
            plain_samples += timed(lambda: plain.execute(SQL, sql_params).to_arrow_table(), 1)
        engine_p50, engine_p99 = percentiles(engine_samples)
        plain_p50, plain_p99 = percentiles(plain_samples)
        lake_p50, lake_p99 = percentiles(asyncio.run(api_latency(home, 0, params, args.requests)))
        hot_p50, hot_p99 = percentiles(asyncio.run(api_latency(home, 7, params, args.requests)))
        ours, bare = asyncio.run(throughput(home, params, args.seconds))
    print(f"engine alone (DuckDB, same SQL): p50 {engine_p50:6.2f} ms  p99 {engine_p99:6.2f} ms")
    print(f"DuckDB iceberg_scan, Arrow out:  p50 {plain_p50:6.2f} ms  p99 {plain_p99:6.2f} ms  "
          f"(engine p99 / this p99 = {engine_p99 / plain_p99:.2f}x)")  # fmt: skip
    print(f"API from the lake:               p50 {lake_p50:6.2f} ms  p99 {lake_p99:6.2f} ms  "
          f"(p99 / engine p99 = {lake_p99 / engine_p99:.2f}x; goal p99 <= 25 ms: "
          f"{'met' if lake_p99 <= 25 else 'MISSED'})")  # fmt: skip
    print(f"API hot tier:                    p50 {hot_p50:6.2f} ms  p99 {hot_p99:6.2f} ms  "
          f"(p99 / engine p99 = {hot_p99 / engine_p99:.2f}x; goal p99 <= 5 ms: "
          f"{'met' if hot_p99 <= 5 else 'MISSED'})")  # fmt: skip
    print(
        f"cached endpoint {ours:,.0f} req/s vs bare Starlette {bare:,.0f} req/s (same bytes): "
        f"{ours / bare:.0%} (goal >= 50%: {'met' if ours >= bare / 2 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
