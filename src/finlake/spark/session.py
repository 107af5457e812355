"""The Spark session factory: local mode with the pinned connectors and the Iceberg JDBC catalog."""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings
from finlake.stack.artifacts import SPARK, ArtifactCache


def session_config(settings: FinlakeSettings, jars: list[Path]) -> dict[str, str]:
    """Spark conf the session sets: jars, Iceberg catalog (JDBC, schema V1), UTC, parallelism."""
    catalog = settings.spark.catalog
    prefix = f"spark.sql.catalog.{catalog}"
    drivers = [str(jar) for jar in jars if "jdbc" in jar.name or jar.name.startswith("postgresql")]
    settings.warehouse.mkdir(parents=True, exist_ok=True)
    return {
        "spark.master": settings.spark.master,
        "spark.jars": ",".join(str(jar) for jar in jars),
        # JDBC drivers must be visible to DriverManager's class loader too ("No suitable driver").
        "spark.driver.extraClassPath": ":".join(drivers),
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.sql.shuffle.partitions": str(
            settings.spark.shuffle_partitions or os.cpu_count() or 2
        ),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": str(settings.spark.ui_enabled).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "jdbc",
        f"{prefix}.uri": f"jdbc:sqlite:{settings.catalog_db}",
        f"{prefix}.jdbc.schema-version": "V1",
        # Each micro-batch reads what it just committed; a cached table would serve stale snapshots.
        f"{prefix}.cache-enabled": "false",
        f"{prefix}.warehouse": settings.warehouse.as_uri(),
        "spark.sql.defaultCatalog": catalog,
    }


def build_session(settings: FinlakeSettings, app_name: str = "finlake") -> SparkSession:
    """A local Spark session with the pinned jars (downloaded on first use)."""
    artifacts = ArtifactCache(
        settings.stack.cache_dir, settings.stack.maven, settings.stack.maven_mirror
    )
    jars = artifacts.jars(SPARK)
    builder = SparkSession.builder.appName(app_name)
    for key, value in session_config(settings, jars).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(settings.spark.log_level)
    return session
