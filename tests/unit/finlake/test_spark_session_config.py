"""Which master and connectors a Spark session takes, before any JVM starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from finlake.config import FinlakeSettings
from finlake.errors import ConfigurationError
from finlake.lake.connection import S3_CHECKSUM_ENV, write_profile
from finlake.spark.session import (
    SUBMIT_GATEWAY_ENV,
    build_session,
    session_config,
    spark_master,
)
from tests.unit.finlake.test_lake_connection import SHARED


def test_local_sessions_bind_to_loopback_and_size_parallelism_to_the_machine(
    tmp_path: Path,
) -> None:
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    conf = session_config(settings, [tmp_path / "sqlite-jdbc.jar", tmp_path / "iceberg.jar"])
    assert conf["spark.master"] == "local[2]"
    assert conf["spark.driver.host"] == "127.0.0.1"
    assert int(conf["spark.sql.shuffle.partitions"]) >= 1
    assert conf["spark.driver.extraClassPath"] == str(tmp_path / "sqlite-jdbc.jar")


def test_a_cluster_session_leaves_the_driver_address_and_parallelism_to_the_submission(
    tmp_path: Path,
) -> None:
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    write_profile(tmp_path, "trino", SHARED)
    conf = session_config(settings, [], master="k8s://https://kubernetes.default.svc")
    assert conf["spark.master"] == "k8s://https://kubernetes.default.svc"
    assert not {"spark.driver.host", "spark.driver.bindAddress", "spark.jars"} & conf.keys()
    assert "spark.sql.shuffle.partitions" not in conf
    assert "spark.driver.extraClassPath" not in conf
    # Executors read the S3 warehouse themselves, with the driver's SDK settings.
    assert {
        f"spark.executorEnv.{key}": value for key, value in S3_CHECKSUM_ENV.items()
    }.items() <= conf.items()


def test_an_explicit_master_wins_over_spark_submits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SUBMIT_GATEWAY_ENV, "1")  # never read: the setting decides first
    settings = FinlakeSettings.model_validate({"home": tmp_path, "spark": {"master": "local[3]"}})
    assert spark_master(settings) == "local[3]"
    monkeypatch.delenv(SUBMIT_GATEWAY_ENV)
    assert spark_master(FinlakeSettings.model_validate({"home": tmp_path})) == "local[2]"


def test_downloaded_connectors_cannot_reach_a_driver_spark_submit_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SUBMIT_GATEWAY_ENV, "1")
    # An explicit master: no question to the (absent) gateway about spark-submit's.
    settings = FinlakeSettings.model_validate({"home": tmp_path, "spark": {"master": "local[2]"}})
    with pytest.raises(ConfigurationError, match="FINLAKE_SPARK__CONNECTORS=provided"):
        build_session(settings)


def test_a_kubernetes_master_refuses_a_lake_only_the_driver_can_see(tmp_path: Path) -> None:
    master = "k8s://https://kubernetes.default.svc"
    settings = FinlakeSettings.model_validate({"home": tmp_path, "spark": {"master": master}})
    with pytest.raises(ConfigurationError, match="FINLAKE_LAKE__CATALOG_URL"):
        build_session(settings)


def test_the_driver_works_in_utc_so_naive_times_survive_a_clock_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PySpark turns timestamps into naive local times and back with the process's time zone
    (``fromtimestamp`` / ``mktime``). In Berlin, 00:30 UTC on 2026-10-25 is the first 02:30 of
    the two: back from its naive form it would be 01:30 UTC. The driver runs in UTC instead."""
    import time
    from datetime import UTC, datetime

    from finlake.spark.session import drive_in_utc

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        moment = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
        naive = datetime.fromtimestamp(moment.timestamp())
        assert time.mktime(naive.timetuple()) != moment.timestamp()  # the trap, in Berlin
        drive_in_utc()
        naive = datetime.fromtimestamp(moment.timestamp())
        assert naive == moment.replace(tzinfo=None)
        assert time.mktime(naive.timetuple()) == moment.timestamp()
    finally:
        monkeypatch.undo()
        time.tzset()
