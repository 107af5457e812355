"""The Spark session factory: local Spark with the pinned jars and the Iceberg JDBC catalog (V1)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings


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
