"""The market stream's checkpoint, and where a stream whose checkpoint is gone starts reading.

Spark keeps the Kafka offsets in the checkpoint. When the checkpoint is lost (a driver pod
restarted onto an empty volume, a deleted ``$FINLAKE_HOME/checkpoints``), a stream that started
from the earliest offset again would append the whole retained topic to bronze a second time.
Instead every batch records, in its ``market.pipeline_runs`` row (written last, after bronze,
silver and gold), the offset after its last record per partition; a stream with an empty
checkpoint starts there. Partitions no run has read start at the earliest offset; an offset past
a partition's end (the topic was deleted and created again) starts that partition from the
beginning too.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from finlake.kafka_io import partition_offsets
from finlake.lake.tables import MARKET_RUNS

log = logging.getLogger(__name__)

EARLIEST = -2  # Spark's startingOffsets JSON: -2 is a partition's earliest offset


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


def resume_from(
    spark: SparkSession, catalog: str, bootstrap: str, topic: str, checkpoint: Path
) -> str:
    """``startingOffsets`` for a stream on ``checkpoint``: ``earliest`` unless the checkpoint has
    no offsets while the lake recorded batches of ``topic``; then after those batches."""
    if has_offsets(checkpoint):
        return "earliest"  # Spark resumes from the checkpoint and ignores it
    recorded = recorded_offsets(spark, catalog, topic)
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
