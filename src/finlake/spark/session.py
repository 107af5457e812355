"""The Spark session factory: the pinned connectors and the Iceberg JDBC catalog, in local mode
or on the master spark-submit was given."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from finlake.config import FinlakeSettings
from finlake.errors import ConfigurationError
from finlake.lake.connection import S3_CHECKSUM_ENV, LakeConnection, lake_connection
from finlake.spark.localfs import LOCAL_FS_CONF, local_fs_jar
from finlake.stack.artifacts import SPARK, SPARK_S3, ArtifactCache

# Set by spark-submit for the Python process of a PySpark application (the JVM's gateway).
SUBMIT_GATEWAY_ENV = "PYSPARK_GATEWAY_PORT"


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
            **lake.s3.key_properties(
                f"{prefix}.s3.access-key-id", f"{prefix}.s3.secret-access-key"
            ),
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
    master: str | None = None,
) -> dict[str, str]:
    """Spark conf the session sets: jars, Iceberg catalog (JDBC, schema V1), UTC, parallelism;
    with ``local_fs`` (the jar of ``finlake.spark.localfs``), Hadoop's local file system without
    a process per file. ``master`` (default: the settings') decides whether the driver binds to
    loopback and picks the parallelism (local), or leaves both to the cluster's submission."""
    master = master or settings.spark.master
    local = master.startswith("local")
    catalog = settings.spark.catalog
    prefix = f"spark.sql.catalog.{catalog}"
    drivers = [str(jar) for jar in jars if "jdbc" in jar.name or jar.name.startswith("postgresql")]
    class_path = [*drivers, *([str(local_fs)] if local_fs is not None else [])]
    lake = lake or lake_connection(settings)
    if lake.is_local:
        settings.warehouse.mkdir(parents=True, exist_ok=True)
    conf = {"spark.master": master}
    if jars:
        conf["spark.jars"] = ",".join(str(jar) for jar in jars)
    if class_path:
        # JDBC drivers must be visible to DriverManager's class loader too ("No suitable driver"),
        # and Hadoop loads its file systems from the application class path.
        conf["spark.driver.extraClassPath"] = ":".join(class_path)
    if local:
        conf |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    if partitions := settings.spark.shuffle_partitions or (local and (os.cpu_count() or 2)):
        conf["spark.sql.shuffle.partitions"] = str(partitions)
    if lake.s3 is not None and not local:
        # Executors in other processes read the warehouse with the same AWS SDK settings.
        conf |= {f"spark.executorEnv.{key}": value for key, value in S3_CHECKSUM_ENV.items()}
    return conf | {
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": str(settings.spark.ui_enabled).lower(),
        "spark.ui.showConsoleProgress": "false",
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


def drive_in_utc() -> None:
    """Make this process's local time UTC, as the session's is.

    PySpark hands timestamps to Python as naive local times and reads naive ``datetime``s back
    (``F.lit``, ``createDataFrame``) as local times too: off UTC, the hour a clock change
    repeats goes out as one instant and comes back as another, so a driver on a laptop in Berlin
    would shift the batches' partition maxima and time bounds by an hour once a year. Set
    before the JVM starts, the JVM and the Python workers it launches inherit it.
    """
    if os.environ.get("TZ") != "UTC":
        os.environ["TZ"] = "UTC"
        time.tzset()


def build_session(
    settings: FinlakeSettings, app_name: str = "finlake", extra: Mapping[str, str] | None = None
) -> SparkSession:
    """A Spark session with the pinned connectors (downloaded on first use unless the runtime
    provides them) and the lake's catalog, plus ``extra`` conf; local unless a master is set or
    spark-submit was given one."""
    drive_in_utc()
    lake = lake_connection(settings)
    master = spark_master(settings)
    if master.startswith("k8s://") and lake.is_local:
        raise ConfigurationError(
            f"on {master} the executors run in pods of their own and cannot share this lake's "
            "SQLite catalog and local warehouse: set FINLAKE_LAKE__CATALOG_URL (PostgreSQL) and "
            "an S3 FINLAKE_LAKE__WAREHOUSE"
        )
    # Under spark-submit the driver's JVM (and its class path) exists before this runs.
    submitted = os.environ.get(SUBMIT_GATEWAY_ENV) is not None
    jars: list[Path] = []
    if settings.spark.connectors == "download":
        if submitted:
            raise ConfigurationError(
                "started by spark-submit, the session cannot add the connector jars to the "
                "driver: put them on Spark's class path (--jars, or the finlake Spark image's "
                "/opt/spark/jars) and set FINLAKE_SPARK__CONNECTORS=provided"
            )
        artifacts = ArtifactCache(
            settings.stack.cache_dir, settings.stack.maven, settings.stack.maven_mirror
        )
        jars = artifacts.jars(SPARK) + (artifacts.jars(SPARK_S3) if lake.s3 is not None else [])
    if lake.s3 is not None:
        # The AWS SDK v2 inside S3FileIO reads these (S3 emulators reject chunked checksums).
        for key, value in S3_CHECKSUM_ENV.items():
            os.environ.setdefault(key, value)
    # Local mode only: the driver JVM is every executor, so the class path above reaches them all.
    local = master.startswith("local") and not submitted
    local_fs = local_fs_jar(settings.stack.cache_dir) if local else None
    if local:
        # Python workers (UDFs, foreachBatch) run `python3` from PATH unless told otherwise: under
        # `.venv/bin/finlake`, with no venv on PATH, that is a Python without finlake or pyspark.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    conf = session_config(settings, jars, lake, local_fs, master)
    for key, value in {**conf, **(extra or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(settings.spark.log_level)
    return session


def spark_master(settings: FinlakeSettings) -> str:
    """The master a session uses: the settings' when set (``FINLAKE_SPARK__MASTER``), else the one
    spark-submit was given when it started this process (a SparkApplication's ``k8s://...``),
    else the settings' default."""
    if "master" not in settings.spark.model_fields_set and os.environ.get(SUBMIT_GATEWAY_ENV):
        # spark-submit started the JVM first and passed its conf as system properties, which a
        # SparkConf reads once connected to that JVM (the session connects there anyway).
        SparkContext._ensure_initialized()
        submitted = SparkConf().get("spark.master", None)
        if submitted:
            return submitted
    return settings.spark.master
