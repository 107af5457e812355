"""The Spark session factory: local Spark with the pinned jars and the Iceberg JDBC catalog (V1)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings
from finlake.spark.localfs import ABSTRACT_FILE_SYSTEM, FILE_SYSTEM


@pytest.fixture
def lake_session(
    spark_lake: tuple[SparkSession, FinlakeSettings],
) -> tuple[SparkSession, FinlakeSettings]:
    return spark_lake


def test_session_is_utc_with_iceberg_and_connectors(
    lake_session: tuple[SparkSession, FinlakeSettings],
) -> None:
    spark, _ = lake_session
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.ui.enabled") == "false"
    jars = spark.conf.get("spark.jars") or ""
    for name in (
        "spark-sql-kafka-0-10_2.13-4.1.3",
        "spark-avro_2.13-4.1.1",
        "iceberg-spark-runtime-4.1",
    ):
        assert name in jars


def test_iceberg_table_round_trip_on_the_jdbc_catalog(
    lake_session: tuple[SparkSession, FinlakeSettings],
) -> None:
    spark, settings = lake_session
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.market")
    spark.sql("CREATE TABLE lake.market.smoke (symbol string, price decimal(10,2)) USING iceberg")
    spark.sql("INSERT INTO lake.market.smoke VALUES ('AAPL', 231.47), ('MSFT', 410.10)")
    rows = spark.sql("SELECT symbol, price FROM lake.market.smoke ORDER BY symbol").collect()
    assert [(r.symbol, str(r.price)) for r in rows] == [("AAPL", "231.47"), ("MSFT", "410.10")]
    with sqlite3.connect(settings.catalog_db) as catalog:
        columns = {row[1] for row in catalog.execute("PRAGMA table_info(iceberg_tables)")}
        [(location,)] = catalog.execute(
            "SELECT metadata_location FROM iceberg_tables WHERE table_name = 'smoke'"
        ).fetchall()
    assert "iceberg_type" in columns  # catalog schema V1, shared with PyIceberg and Trino
    assert Path(location.removeprefix("file:")).is_relative_to(settings.warehouse)


def _local_fs(spark: SparkSession) -> Any:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    return jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI("file:///"), conf), jvm


def test_local_files_go_through_the_nio_file_system(
    lake_session: tuple[SparkSession, FinlakeSettings], tmp_path: Path
) -> None:
    spark, _ = lake_session
    fs, jvm = _local_fs(spark)
    assert fs.getClass().getName() == FILE_SYSTEM
    target = tmp_path / "data.bin"
    stream = fs.create(jvm.org.apache.hadoop.fs.Path(target.as_uri()), True)
    stream.write(7)
    stream.close()
    assert target.read_bytes() == b"\x07"
    fs.setPermission(
        jvm.org.apache.hadoop.fs.Path(target.as_uri()),
        jvm.org.apache.hadoop.fs.permission.FsPermission(0o640),
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    status = fs.getFileLinkStatus(jvm.org.apache.hadoop.fs.Path(target.as_uri()))
    assert status.isFile()
    assert not status.isSymlink()
    assert status.getLen() == 1


def test_checkpoint_files_are_written_atomically_through_file_context(
    lake_session: tuple[SparkSession, FinlakeSettings], tmp_path: Path
) -> None:
    spark, _ = lake_session
    _, jvm = _local_fs(spark)
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    folder = jvm.org.apache.hadoop.fs.Path(tmp_path.as_uri())
    assert (
        jvm.org.apache.hadoop.fs.AbstractFileSystem.get(folder.toUri(), conf).getClass().getName()
        == ABSTRACT_FILE_SYSTEM
    )
    checkpointing = jvm.org.apache.spark.sql.execution.streaming.checkpointing
    manager = getattr(getattr(checkpointing, "CheckpointFileManager$"), "MODULE$").create(
        folder, conf
    )
    stream = manager.createAtomic(jvm.org.apache.hadoop.fs.Path(folder, "0"), True)
    stream.write(1)
    stream.close()
    assert (tmp_path / "0").read_bytes() == b"\x01"
    assert stat.S_IMODE((tmp_path / "0").stat().st_mode) == 0o644 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".0.crc", "0"]  # no temp file left


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
