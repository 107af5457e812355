"""The Spark session factory: local mode with the pinned connectors and the Iceberg JDBC catalog."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings
from finlake.lake.connection import S3_CHECKSUM_ENV, LakeConnection, lake_connection
from finlake.spark.localfs import LOCAL_FS_CONF, local_fs_jar
from finlake.stack.artifacts import SPARK, SPARK_S3, ArtifactCache


def catalog_config(prefix: str, lake: LakeConnection) -> dict[str, str]:
    """The Iceberg catalog's connection: JDBC URL and login, warehouse, S3FileIO when on S3."""
    conf = {f"{prefix}.uri": lake.jdbc_url, f"{prefix}.warehouse": lake.warehouse}
    if lake.user is not None:
        conf[f"{prefix}.jdbc.user"] = lake.user
    if lake.password is not None:
        conf[f"{prefix}.jdbc.password"] = lake.password
    if lake.s3 is not None:
        conf |= {
            f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
            f"{prefix}.s3.access-key-id": lake.s3.access_key_id,
            f"{prefix}.s3.secret-access-key": lake.s3.secret_access_key,
            f"{prefix}.client.region": lake.s3.region,
        }
        if lake.s3.endpoint:
            conf |= {
                f"{prefix}.s3.endpoint": lake.s3.endpoint,
                f"{prefix}.s3.path-style-access": "true",
            }
    return conf


def session_config(
    settings: FinlakeSettings,
    jars: list[Path],
    lake: LakeConnection | None = None,
    local_fs: Path | None = None,
) -> dict[str, str]:
    """Spark conf the session sets: jars, Iceberg catalog (JDBC, schema V1), UTC, parallelism;
    with ``local_fs`` (the jar of ``finlake.spark.localfs``), Hadoop's local file system without
    a process per file."""
    catalog = settings.spark.catalog
    prefix = f"spark.sql.catalog.{catalog}"
    drivers = [str(jar) for jar in jars if "jdbc" in jar.name or jar.name.startswith("postgresql")]
    class_path = [*drivers, *([str(local_fs)] if local_fs is not None else [])]
    lake = lake or lake_connection(settings)
    if lake.is_local:
        settings.warehouse.mkdir(parents=True, exist_ok=True)
    return {
        "spark.master": settings.spark.master,
        "spark.jars": ",".join(str(jar) for jar in jars),
        # JDBC drivers must be visible to DriverManager's class loader too ("No suitable driver"),
        # and Hadoop loads its file systems from the application class path.
        "spark.driver.extraClassPath": ":".join(class_path),
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
        f"{prefix}.jdbc.schema-version": "V1",
        # Each micro-batch reads what it just committed; a cached table would serve stale snapshots.
        f"{prefix}.cache-enabled": "false",
        **catalog_config(prefix, lake),
        "spark.sql.defaultCatalog": catalog,
        **(LOCAL_FS_CONF if local_fs is not None else {}),
    }


def build_session(
    settings: FinlakeSettings, app_name: str = "finlake", extra: Mapping[str, str] | None = None
) -> SparkSession:
    """A local Spark session with the pinned jars (downloaded on first use), plus ``extra`` conf."""
    artifacts = ArtifactCache(
        settings.stack.cache_dir, settings.stack.maven, settings.stack.maven_mirror
    )
    lake = lake_connection(settings)
    jars = artifacts.jars(SPARK)
    if lake.s3 is not None:
        jars += artifacts.jars(SPARK_S3)
        # The AWS SDK v2 inside S3FileIO reads these (S3 emulators reject chunked checksums).
        for key, value in S3_CHECKSUM_ENV.items():
            os.environ.setdefault(key, value)
    # Local mode only: the driver JVM is every executor, so the class path above reaches them all.
    is_local = settings.spark.master.startswith("local")
    local_fs = local_fs_jar(settings.stack.cache_dir) if is_local else None
    builder = SparkSession.builder.appName(app_name)
    conf = session_config(settings, jars, lake, local_fs)
    for key, value in {**conf, **(extra or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(settings.spark.log_level)
    return session
