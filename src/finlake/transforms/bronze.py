"""Kafka records -> bronze rows: split the Confluent wire header, decode Avro per writer schema."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro

MAGIC_BYTE = 0


MAX_SCHEMA_ID = 2**31 - 1
"""Registry ids are positive Java ints; 4 header bytes past it belong to no wire-format record."""


def with_wire_header(records: DataFrame) -> DataFrame:
    """Add ``magic`` and ``schema_id`` from the 5-byte Confluent header (null when too short).

    Every record gets both, wire format or not, so the id bytes are read as a long first: a
    record that is no Avro at all (a byte order mark, gzip, text) can read past the int range,
    and under ANSI casts an int overflow would fail the whole micro-batch instead of sending
    that record to the dead letter. Past the range, ``schema_id`` is null.
    """
    long_enough = F.length("value") >= 5
    magic = F.conv(F.hex(F.substring("value", 1, 1)), 16, 10).cast("int")
    id_bytes = F.conv(F.hex(F.substring("value", 2, 4)), 16, 10).cast("long")
    schema_id = F.when(id_bytes <= MAX_SCHEMA_ID, id_bytes.cast("int"))
    return records.withColumn("magic", F.when(long_enough, magic)).withColumn(
        "schema_id", F.when(long_enough, schema_id)
    )


def _payload() -> Column:
    return F.expr("substring(value, 6, length(value) - 5)")


def decode_ticks(records: DataFrame, writer_schema: str, reader_schema: str) -> DataFrame:
    """Decode ``writer_schema`` records into the current contract as ``tick`` (null if bad)."""
    options = {"mode": "PERMISSIVE", "avroSchema": reader_schema}
    return records.withColumn("tick", from_avro(_payload(), writer_schema, options))


def decode_by_schema(
    records: DataFrame, writer_schemas: Mapping[int, str], reader_schema: str
) -> DataFrame:
    """Add ``tick``: each record decoded with its own writer schema (``with_wire_header`` ids).

    One pass for every writer schema; ``tick`` is null for a record in no such schema, not in the
    wire format, or whose body does not decode.
    """
    options = {"mode": "PERMISSIVE", "avroSchema": reader_schema}
    wire = F.col("magic") == MAGIC_BYTE
    tick: Column | None = None
    for schema_id, writer in sorted(writer_schemas.items()):
        mine = wire & (F.col("schema_id") == schema_id)
        decoded = from_avro(_payload(), writer, options)
        tick = F.when(mine, decoded) if tick is None else tick.when(mine, decoded)
    if tick is None:  # no readable writer schema: nothing decodes (typed like a decoded tick)
        tick = F.when(F.lit(False), from_avro(_payload(), reader_schema, options))
    # PERMISSIVE from_avro yields a struct of nulls for a body it cannot read; a decoded tick
    # always has its required symbol.
    with_tick = records.withColumn("tick", tick)
    return with_tick.withColumn("tick", F.when(F.col("tick.symbol").isNotNull(), F.col("tick")))


HEADERS_TYPE = "array<struct<key:string,value:string>>"


def to_bronze_rows(decoded: DataFrame, *extra: Column) -> DataFrame:
    """Flatten decoded ticks and add the Kafka coordinates and ingest time (and ``extra``)."""
    return decoded.select(
        "tick.symbol",
        "tick.timestamp",
        "tick.price",
        "tick.volume",
        "tick.currency",
        "tick.exchange",
        "tick.source",
        "tick.produced_at",
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("key").cast("string").alias("kafka_key"),
        F.col("timestamp").alias("kafka_timestamp"),
        "schema_id",
        "ingest_ts",
        _headers(decoded).alias("headers"),
        *extra,
    )


def _headers(records: DataFrame) -> Column:
    """Kafka headers as (key, text) pairs in record order; null for a record without any."""
    if "headers" not in records.columns:  # a source read without includeHeaders
        return F.lit(None).cast(HEADERS_TYPE)
    pairs = F.transform(
        "headers",
        lambda header: F.struct(
            header["key"].alias("key"), header["value"].cast("string").alias("value")
        ),
    )
    return F.when(F.size("headers") > 0, pairs).cast(HEADERS_TYPE)


def to_dead_letters(records: DataFrame, error: Column) -> DataFrame:
    """Undecodable records with the reason, byte for byte."""
    return records.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("key").cast("string").alias("kafka_key"),
        F.col("timestamp").alias("kafka_timestamp"),
        "value",
        error.alias("error"),
        "ingest_ts",
    )
