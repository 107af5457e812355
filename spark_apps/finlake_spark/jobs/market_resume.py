"""The market stream's checkpoint, and where a stream whose checkpoint is gone starts reading.

Spark keeps the Kafka offsets in the checkpoint. When the checkpoint is lost (a driver pod
restarted onto an empty volume, a deleted ``$FINLAKE_HOME/checkpoints``), a stream that started
from the earliest offset again would append the whole retained topic to bronze a second time.
Instead every batch records, in its ``market.pipeline_runs`` row (written last, after bronze,
silver and gold), the offset after its last record per partition; a stream with an empty
checkpoint starts there. Partitions no run has read start at the earliest offset; an offset past
a partition's end (the topic was deleted and created again) starts that partition from the
beginning too.

A stream that died inside a batch may have committed that batch to bronze (or dead letters,
silver, quarantine) without recording its run. Resuming after the recorded batches reads those
records again, so before it starts, the rows of such an unrecorded batch are deleted (found by
its commits' batch marker and topic; each of its rows carries the batch's one ``ingest_ts``), and
the resumed stream appends them once, bars included. Only rows Kafka still holds are deleted:
those retention removed meanwhile cannot be read again and stay. This assumes one stream per
topic and lake (one MedallionPipeline reading it): a second stream starting fresh would take
the first one's batch in flight for an unrecorded one.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from finlake.kafka_io import partition_offsets, partition_watermarks
from finlake.lake.table_spec import TableSpec
from finlake.lake.tables import (
    MARKET_CLEANED,
    MARKET_DEAD_LETTER,
    MARKET_QUARANTINE,
    MARKET_RAW,
    MARKET_RUNS,
)
from finlake_spark.io import MARKER, TOPIC_PROPERTY

log = logging.getLogger(__name__)

EARLIEST = -2  # Spark's startingOffsets JSON: -2 is a partition's earliest offset
# The tables a batch appends to once (``append_once``); gold and runs are merged instead.
APPENDED_ONCE = (MARKET_RAW, MARKET_DEAD_LETTER, MARKET_CLEANED, MARKET_QUARANTINE)


def checkpoint_id(checkpoint: Path) -> str:
    """The query id Spark keeps in the checkpoint, created first so every batch can name it.

    Spark reuses an existing ``metadata`` file, so a restart keeps the id and a new
    checkpoint gets a new one (which is how idempotency markers stay unambiguous).
    """
    metadata = checkpoint / "metadata"
    if not metadata.exists():
        checkpoint.mkdir(parents=True, exist_ok=True)
        metadata.write_text(json.dumps({"id": str(uuid.uuid4())}) + "\n")
    return str(json.loads(metadata.read_text().splitlines()[0])["id"])


def has_offsets(checkpoint: Path) -> bool:
    """Whether Spark logged the offsets of a micro-batch in ``checkpoint`` (then it resumes there
    and ignores ``startingOffsets``)."""
    offsets = checkpoint / "offsets"
    return offsets.is_dir() and any(entry.name.isdigit() for entry in offsets.iterdir())


def recorded_offsets(spark: SparkSession, catalog: str, topic: str) -> dict[int, int]:
    """Per partition of ``topic``, the offset after the last record of the latest recorded batch
    that read it (the latest, not the largest: a topic created again starts over at 0)."""
    rows = (
        spark.table(MARKET_RUNS.qualified(catalog))
        .filter(F.col("kafka_topic") == topic)
        .select(F.explode("next_offsets").alias("kafka_partition", "next_offset"), "committed_at")
        .groupBy("kafka_partition")
        .agg(F.max_by("next_offset", "committed_at").alias("next_offset"))
        .collect()
    )
    return {int(row.kafka_partition): int(row.next_offset) for row in rows}


def starting_offsets(recorded: dict[int, int], ends: dict[int, int], topic: str) -> str:
    """Spark's ``startingOffsets`` JSON for every partition of ``topic`` (``ends``: the offset
    after each partition's last record now)."""
    start = {
        str(partition): (
            recorded[partition]
            if partition in recorded and recorded[partition] <= end
            else EARLIEST
        )
        for partition, end in sorted(ends.items())
    }
    return json.dumps({topic: start})


def unrecorded_commits(
    spark: SparkSession, catalog: str, topic: str, tables: tuple[TableSpec, ...]
) -> list[tuple[str, str, int, int | None]]:
    """(table, batch marker, snapshot, parent) of every commit a stream of ``topic`` made for a
    batch after the last one it recorded: its checkpoint is one that recorded batches of the
    topic and its batch id is higher than any that checkpoint recorded, or the commit names the
    topic and its checkpoint recorded none (a stream that died in its first batch)."""
    runs = spark.table(MARKET_RUNS.qualified(catalog)).filter(F.col("kafka_topic") == topic)
    last = runs.groupBy(F.split("batch_key", ":")[0].alias("checkpoint")).agg(
        F.max("batch_id").alias("last_batch")
    )
    commits = [
        spark.sql(
            f"SELECT '{spec.identifier}' AS name, summary['{MARKER}'] AS marker, "
            f"summary['{TOPIC_PROPERTY}'] AS topic, snapshot_id, parent_id "
            f"FROM {spec.qualified(catalog)}.snapshots WHERE summary['{MARKER}'] IS NOT NULL"
        )
        for spec in tables
    ]
    union = commits[0]
    for more in commits[1:]:
        union = union.unionByName(more)
    marked = union.select(
        "*",
        F.split("marker", ":")[0].alias("checkpoint"),
        F.split("marker", ":")[1].cast("bigint").alias("batch"),
    )
    # Commits from before they named their topic (null) are this topic's if their checkpoint
    # recorded runs of it.
    same_topic = F.col("topic").isNull() | (F.col("topic") == topic)
    after_its_runs = (
        F.col("last_batch").isNotNull() & (F.col("batch") > F.col("last_batch")) & same_topic
    )
    without_runs = F.col("last_batch").isNull() & (F.col("topic") == topic)
    rows = (
        marked.join(F.broadcast(last), "checkpoint", "left")
        .filter(after_its_runs | without_runs)
        .select("name", "marker", "snapshot_id", "parent_id")
        .collect()
    )
    return [(row.name, row.marker, int(row.snapshot_id), row.parent_id) for row in rows]


def undo_unrecorded_batches(
    spark: SparkSession,
    catalog: str,
    topic: str,
    tables: tuple[TableSpec, ...],
    readable_from: Callable[[], dict[int, int]],
) -> dict[str, int]:
    """Delete the rows of the batches a stream of ``topic`` committed to ``tables`` without
    recording their run, those the resumed stream reads again: from ``readable_from()``, per
    partition the oldest offset Kafka still holds (asked only when there is such a batch). Rows
    Kafka no longer holds stay. Rows deleted per table (nothing: no such batch)."""
    deleted: dict[str, int] = {}
    specs = {spec.identifier: spec for spec in tables}
    oldest: DataFrame | None = None
    for name, marker, snapshot, parent in unrecorded_commits(spark, catalog, topic, tables):
        table = specs[name].qualified(catalog)
        if parent is None:  # the table's first commit: all of it
            added = spark.sql(f"SELECT * FROM {table} VERSION AS OF {snapshot}")
        else:
            reader = spark.read.format("iceberg").option("start-snapshot-id", parent)
            added = reader.option("end-snapshot-id", snapshot).load(table)
        # Every row of a batch has the batch's ingest_ts, which no other batch has.
        parts = added.select("ingest_ts", "kafka_partition").distinct().localCheckpoint()
        # Still there? (An earlier resume may have deleted them already; the commit stays in
        # the table's history until its snapshots expire.)
        remaining = spark.table(table).join(parts, ["ingest_ts", "kafka_partition"], "left_semi")
        if not remaining.count():
            continue
        if oldest is None:
            oldest = spark.createDataFrame(
                sorted(readable_from().items()), "kafka_partition int, readable_from bigint"
            ).localCheckpoint()
        parts.join(F.broadcast(oldest), "kafka_partition").createOrReplaceTempView(
            "unrecorded_batch"
        )
        again = (
            "t.ingest_ts = u.ingest_ts AND t.kafka_partition = u.kafka_partition "
            "AND t.kafka_offset >= u.readable_from"
        )
        count = spark.sql(
            f"SELECT count(*) FROM {table} t LEFT SEMI JOIN unrecorded_batch u ON {again}"
        ).collect()[0][0]
        kept = remaining.count() - count
        if count:
            spark.sql(
                f"MERGE INTO {table} t USING unrecorded_batch u ON {again} WHEN MATCHED THEN DELETE"
            )
        spark.catalog.dropTempView("unrecorded_batch")
        deleted[name] = deleted.get(name, 0) + count
        log.warning(
            "market stream: batch %s committed %s rows to %s but never recorded its run; "
            "deleted them: the resumed stream appends them once%s",
            marker,
            count,
            name,
            f" ({kept} rows kept: Kafka no longer holds their records)" if kept else "",
        )
    return deleted


def resume_from(
    spark: SparkSession,
    catalog: str,
    bootstrap: str,
    topic: str,
    checkpoint: Path,
    appended: tuple[TableSpec, ...] = APPENDED_ONCE,
) -> str:
    """``startingOffsets`` for a stream on ``checkpoint``: ``earliest`` unless the checkpoint has
    no offsets while the lake recorded batches of ``topic``; then after those batches. Without
    offsets, the rows of a batch committed but never recorded are deleted from the ``appended``
    tables first (also when no batch was recorded: a stream that died in its first one)."""
    if has_offsets(checkpoint):
        return "earliest"  # Spark resumes from the checkpoint and ignores it
    recorded = recorded_offsets(spark, catalog, topic)

    def oldest_offsets() -> dict[int, int]:
        return {p: low for p, (low, _) in partition_watermarks(bootstrap, topic).items()}

    undo_unrecorded_batches(spark, catalog, topic, appended, oldest_offsets)
    if not recorded:
        return "earliest"
    ends = partition_offsets(bootstrap, topic)
    offsets = starting_offsets(recorded, ends, topic)
    restarted = sorted(p for p, end in ends.items() if p in recorded and recorded[p] > end)
    log.warning(
        "market stream: no offsets in the checkpoint %s; resuming %s after the batches the lake "
        "recorded, not from the earliest offset: %s%s",
        checkpoint,
        topic,
        offsets,
        f" (partitions {restarted} are shorter than recorded: read from their start)"
        if restarted
        else "",
    )
    return offsets
