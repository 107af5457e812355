from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import fastavro
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from finlake.contracts.schemas import schema_text
from finlake.quality import MARKET_TICK_EXPECTATIONS, Expectation, ExpectationAction
from finlake.transforms.bronze import decode_by_schema, with_wire_header
from finlake.transforms.gold import finish_bars, roll_up, to_bars, to_partial_bars, touched_windows
from finlake.transforms.quality import split_by_expectations
from finlake.transforms.silver import tag_ticks, to_silver_ticks, with_rule_detail

T0 = datetime(2026, 11, 25, 23, 59, 30, tzinfo=UTC)
TICKS = StructType(
    [
        StructField("symbol", StringType()),
        StructField("timestamp", TimestampType()),
        StructField("price", DoubleType()),
        StructField("volume", LongType()),
        StructField("kafka_partition", IntegerType()),
        StructField("kafka_offset", LongType()),
    ]
)


def ticks(spark: SparkSession, rows: list[tuple[object, ...]]) -> DataFrame:
    return spark.createDataFrame(rows, schema=TICKS)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_expectations_route_each_row_by_its_first_failed_rule(spark: SparkSession) -> None:
    rows = [
        ("AAPL", at(0), 10.0, 5, 0, 0),
        ("AAPL", at(1), None, 5, 0, 1),
        ("AAPL", at(2), 10.0, None, 0, 2),
        ("AAPL", at(3), 0.0, 5, 0, 3),
        ("AAPL", at(4), -1.0, None, 0, 4),
        ("", at(5), 10.0, 5, 0, 5),
        ("AAPL", at(6), 1e9, 5, 0, 6),
        ("AAPL", at(7), 0.004, 5, 0, 7),  # 0.00 at the cent silver keeps
        ("AAPL", at(8), 99999999.995, 5, 0, 8),  # rounds to 100000000.00
        ("AAPL", at(9), 0.005, 5, 0, 9),  # rounds half up to 0.01: passes
        ("AAPL", datetime.now(UTC) + timedelta(days=2), 10.0, 5, 0, 10),
        ("AAPL", datetime.now(UTC) + timedelta(hours=12), 10.0, 5, 0, 11),
        ("AAPL", at(12), 10.0, 10**12, 0, 12),
        ("AAPL", at(13), 10.0, 5 * 10**18, 0, 13),  # two of these overflow a bar's bigint
    ]
    result = split_by_expectations(ticks(spark, rows), MARKET_TICK_EXPECTATIONS)
    assert [r.kafka_offset for r in result.passed.collect()] == [0, 9, 11, 12]
    routed = {r.kafka_offset: r.rule for r in result.quarantined.collect()}
    assert routed == {
        1: "price_not_null",
        2: "volume_not_null",
        3: "price_positive",
        4: "volume_not_null",
        5: "symbol_present",
        6: "price_fits_decimal",
        7: "price_positive",
        8: "price_fits_decimal",
        10: "timestamp_not_future",
        13: "volume_plausible",
    }
    assert result.dropped.count() == 0


def test_drop_and_fail_actions_are_separated(spark: SparkSession) -> None:
    rules = [
        Expectation(name="no_zero", condition="price <> 0", action=ExpectationAction.DROP),
        Expectation(name="no_huge", condition="price < 100", action=ExpectationAction.FAIL),
    ]
    rows = [("A", at(0), 0.0, 1, 0, 0), ("A", at(1), 500.0, 1, 0, 1), ("A", at(2), 5.0, 1, 0, 2)]
    result = split_by_expectations(ticks(spark, rows), rules)
    assert [r.kafka_offset for r in result.dropped.collect()] == [0]
    assert [(r.kafka_offset, r.rule) for r in result.failed.collect()] == [(1, "no_huge")]
    assert [r.kafka_offset for r in result.passed.collect()] == [2]


def outcomes(frame: DataFrame) -> dict[tuple[int, int], str | None]:
    return {(r.kafka_partition, r.kafka_offset): r.outcome for r in frame.collect()}


def test_tag_keeps_the_first_read_of_a_key_and_marks_the_rest_duplicate(
    spark: SparkSession,
) -> None:
    rows = [("A", at(0), 10.0, 1, 0, 7), ("A", at(0), 11.0, 1, 0, 3), ("B", at(0), 12.0, 1, 1, 0)]
    tagged = tag_ticks(ticks(spark, rows), MARKET_TICK_EXPECTATIONS, {}, lateness_s=600)
    assert outcomes(tagged) == {(0, 3): None, (0, 7): "duplicate", (1, 0): None}


def test_late_is_judged_per_symbol_in_offset_order(spark: SparkSession) -> None:
    rows = [
        ("A", at(0), 1.0, 1, 0, 0),
        ("A", at(1000), 1.0, 1, 0, 1),
        ("A", at(500), 1.0, 1, 0, 2),  # 500 s behind: within 600 s
        ("A", at(300), 1.0, 1, 0, 3),  # 700 s behind: late
        ("A", at(5000), None, 1, 0, 4),  # invalid: does not move the clock
        ("A", at(4000), 1.0, 1, 0, 5),
        ("B", at(10), 1.0, 1, 1, 0),  # other partition: its own clock
        # Same partition as A, published after A's backfill: B's own clock, not A's.
        ("C", at(60), 1.0, 1, 0, 6),
        ("C", at(120), 1.0, 1, 0, 7),
    ]
    tagged = tag_ticks(ticks(spark, rows), MARKET_TICK_EXPECTATIONS, {}, lateness_s=600)
    assert outcomes(tagged) == {
        (0, 0): None,
        (0, 1): None,
        (0, 2): None,
        (0, 3): "late",
        (0, 4): "price_not_null",
        (0, 5): None,
        (1, 0): None,
        (0, 6): None,
        (0, 7): None,
    }


def test_late_carries_the_previous_batches_maximum(spark: SparkSession) -> None:
    rows = [("B", at(10), 1.0, 1, 1, 5), ("C", at(10), 1.0, 1, 1, 6)]
    tagged = tag_ticks(ticks(spark, rows), MARKET_TICK_EXPECTATIONS, {"B": at(2000)}, 600)
    assert outcomes(tagged) == {(1, 5): "late", (1, 6): None}


def test_a_preset_outcome_is_kept_and_takes_no_part_in_late_or_duplicate(
    spark: SparkSession,
) -> None:
    rows = [
        ("A", at(5000), 1.0, 1, 0, 0),  # preset: would otherwise move the clock
        ("A", at(0), 1.0, 1, 0, 1),
        ("A", at(0), 1.0, 1, 0, 2),  # preset: would otherwise be the duplicate
        ("A", at(0), 1.0, 1, 0, 3),
    ]
    preset = F.when(F.col("kafka_offset").isin(0, 2), F.lit("undecodable"))
    tagged = tag_ticks(ticks(spark, rows), MARKET_TICK_EXPECTATIONS, {}, 600, preset)
    assert outcomes(tagged) == {
        (0, 0): "undecodable",
        (0, 1): None,
        (0, 2): "undecodable",
        (0, 3): "duplicate",
    }


def test_quarantined_rows_carry_rule_and_detail(spark: SparkSession) -> None:
    rows = [("A", at(0), -1.0, 1, 0, 0)]
    tagged = tag_ticks(ticks(spark, rows), MARKET_TICK_EXPECTATIONS, {}, lateness_s=600)
    [row] = with_rule_detail(tagged, MARKET_TICK_EXPECTATIONS).collect()
    assert (row.rule, row.detail) == ("price_positive", "keep price > 0")


def test_silver_price_is_decimal_with_two_places(spark: SparkSession) -> None:
    base = ticks(spark, [("A", at(0), 10.006, 1, 0, 0)])
    enriched = base.select(
        "*",
        F.lit("USD").alias("currency"),
        F.lit("XNAS").alias("exchange"),
        F.lit("replay").alias("source"),
        F.lit(at(0)).alias("ingest_ts"),
    )
    [row] = to_silver_ticks(enriched).collect()
    assert row.price == Decimal("10.01")
    assert str(to_silver_ticks(enriched).schema["price"].dataType) == "DecimalType(10,2)"


def _silver(spark: SparkSession, rows: list[tuple[str, datetime, str, int]]) -> DataFrame:
    return spark.createDataFrame(
        [(s, t, Decimal(p), v) for s, t, p, v in rows],
        "symbol string, timestamp timestamp, price decimal(10,2), volume bigint",
    )


def test_bars_take_open_and_close_by_event_time_not_arrival(spark: SparkSession) -> None:
    # Arrival order is scrambled; event time decides open and close.
    frame = _silver(
        spark,
        [
            ("A", at(40), "12.00", 100),
            ("A", at(31), "10.00", 300),
            ("A", at(89), "11.00", 100),
            ("A", at(35), "9.00", 0),
            ("A", at(0), "8.00", 10),
        ],
    )
    bars = {r.window_start: r for r in to_bars(frame, "minute").collect()}
    first = bars[datetime(2026, 11, 26, 0, 0)]
    assert (first.open, first.close) == (Decimal("10.00"), Decimal("11.00"))
    assert (first.high, first.low, first.volume, first.trade_count) == (
        Decimal("12.00"),
        Decimal("9.00"),
        500,
        4,
    )
    assert first.vwap == Decimal("10.600000")  # (1200 + 3000 + 1100) / 500
    last_of_day = bars[datetime(2026, 11, 25, 23, 59)]
    assert last_of_day.window_end == datetime(2026, 11, 26, 0, 0)


def test_bar_with_no_volume_has_null_vwap(spark: SparkSession) -> None:
    [bar] = to_bars(_silver(spark, [("A", at(0), "5.00", 0)]), "hour").collect()
    assert bar.vwap is None
    assert bar.window_start == datetime(2026, 11, 25, 23, 0)


@pytest.mark.parametrize(("unit", "expected"), [("minute", 4), ("hour", 3)])
def test_touched_windows_are_distinct_per_symbol(
    spark: SparkSession, unit: str, expected: int
) -> None:
    frame = _silver(
        spark,
        [
            ("A", at(0), "1.00", 1),
            ("A", at(35), "1.00", 1),
            ("A", at(95), "1.00", 1),
            ("B", at(35), "1.00", 1),
        ],
    )
    assert touched_windows(frame, unit).count() == expected


def test_hour_bars_rolled_up_from_minute_partials_equal_bars_from_ticks(
    spark: SparkSession,
) -> None:
    # Scrambled arrival, ties of price across minutes, a zero-volume tick, two symbols and hours.
    frame = _silver(
        spark,
        [
            ("A", at(95), "10.10", 7),
            ("A", at(31), "10.03", 300),
            ("A", at(3000), "9.99", 1),
            ("A", at(40), "10.07", 0),
            ("A", at(0), "10.01", 10),
            ("A", at(29), "10.11", 3),
            ("B", at(29), "5.00", 2),
            ("B", at(3700), "5.50", 9),
        ],
    )
    partials = to_partial_bars(frame, "minute")
    rolled = {
        (r.symbol, r.window_start): r
        for r in finish_bars(roll_up(partials, "hour"), "hour").collect()
    }
    direct = {(r.symbol, r.window_start): r for r in to_bars(frame, "hour").collect()}
    assert rolled == direct
    assert len(direct) == 4  # A: 23:00, 00:00; B: 23:00, 01:00
    a_midnight = direct[("A", datetime(2026, 11, 26, 0, 0))]
    assert (a_midnight.open, a_midnight.close) == (Decimal("10.03"), Decimal("9.99"))
    minutes = finish_bars(partials, "minute").orderBy("symbol", "window_start").collect()
    assert minutes == to_bars(frame, "minute").orderBy("symbol", "window_start").collect()


def test_partial_bars_pass_extra_aggregates_through(spark: SparkSession) -> None:
    frame = _silver(spark, [("A", at(0), "1.00", 1), ("A", at(35), "2.00", 1)]).withColumn(
        "new", F.col("price") > 1
    )
    touched = {
        r.window_start: r.touched
        for r in to_partial_bars(frame, "minute", F.max("new").alias("touched")).collect()
    }
    assert touched == {datetime(2026, 11, 25, 23, 59): False, datetime(2026, 11, 26, 0, 0): True}


OLD_TICK = {  # an earlier contract version: no exchange, no currency
    "type": "record",
    "name": "MarketTick",
    "namespace": "io.finlake.market",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "price", "type": ["null", "double"], "default": None},
        {"name": "volume", "type": ["null", "long"], "default": None},
        {"name": "source", "type": "string"},
        {"name": "produced_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def _framed(schema: dict[str, object], schema_id: int, record: dict[str, object]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), record)
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


def test_decode_by_schema_reads_each_record_with_its_own_writer_schema(
    spark: SparkSession,
) -> None:
    current = json.loads(schema_text("market_tick"))
    record = {
        "symbol": "AAA",
        "timestamp": at(0),
        "price": 10.5,
        "volume": 3,
        "source": "replay",
        "produced_at": at(1),
    }
    values = [
        (0, _framed(OLD_TICK, 7, record)),
        (1, _framed(current, 8, {**record, "symbol": "BBB", "exchange": "XNAS"})),
        (2, _framed(current, 9, record)),  # an id not given: not decoded
        (3, b"\x00\x00\x00\x00\x08garbage"),  # a given id, but not Avro of it
        (4, b"not avro"),  # not in the wire format
    ]
    records = spark.createDataFrame(values, "offset long, value binary")
    writers = {7: json.dumps(OLD_TICK), 8: schema_text("market_tick")}
    decoded = decode_by_schema(with_wire_header(records), writers, schema_text("market_tick"))
    ticks = {r.offset: r.tick for r in decoded.collect()}
    assert (ticks[0].symbol, ticks[0].price, ticks[0].exchange) == ("AAA", 10.5, None)
    assert (ticks[1].symbol, ticks[1].exchange) == ("BBB", "XNAS")
    assert [ticks[n] for n in (2, 3, 4)] == [None, None, None]


def test_decode_by_schema_without_writer_schemas_decodes_nothing(spark: SparkSession) -> None:
    records = spark.createDataFrame([(0, b"\x00\x00\x00\x00\x01x")], "offset long, value binary")
    decoded = decode_by_schema(with_wire_header(records), {}, schema_text("market_tick"))
    assert [r.tick for r in decoded.collect()] == [None]
    assert decoded.schema["tick"].dataType.simpleString().startswith("struct<symbol:string")


def test_a_header_whose_id_bytes_pass_the_int_range_is_no_wire_format(spark: SparkSession) -> None:
    """A record that only looks like a header: its 4 id bytes read as more than 2^31 - 1 (a UTF-8
    byte order mark, gzip, text starting with a non-ASCII letter, or magic 0 with a high byte).
    Under ANSI casts that overflow failed the whole micro-batch, again at every restart; it must
    be a record without a schema id (the dead letter), the batch going on."""
    values = [
        (0, '\ufeff{"symbol": "AAA"}'.encode()),  # EF BB BF 7B ...
        (1, b"\x1f\x8b\x08\x00\x00\x00\x00\x00"),  # gzip
        (2, b"\x00\xff\xff\xff\xfftick"),  # magic 0, an id no registry hands out
        (3, b"\x00\x00\x00\x00\x07tick"),
    ]
    records = spark.createDataFrame(values, "offset long, value binary")
    rows = {r.offset: (r.magic, r.schema_id) for r in with_wire_header(records).collect()}
    assert rows == {0: (0xEF, None), 1: (0x1F, None), 2: (0, None), 3: (0, 7)}
