from __future__ import annotations

from pathlib import Path

import pytest

from finlake.config import FinlakeSettings
from finlake.errors import ConfigurationError
from finlake.lake.connection import (
    LakeConnection,
    S3Access,
    forget_profile,
    lake_connection,
    read_profile,
    write_profile,
)
from finlake.lake.tables import MARKET_RAW
from finlake.spark.session import session_config

SHARED = LakeConnection(
    jdbc_url="jdbc:postgresql://127.0.0.1:15432/lake",
    warehouse="s3://lake/warehouse",
    user="finlake",
    password="p@ss/word",
    s3=S3Access("http://127.0.0.1:18333", "KEYID", "s3cret", "us-east-1"),
)


def test_default_lake_is_the_sqlite_file_and_local_warehouse(tmp_path: Path) -> None:
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    lake = lake_connection(settings)
    assert lake.is_local
    assert lake.sqlalchemy_url() == f"sqlite:///{tmp_path.resolve() / 'catalog.db'}"
    assert lake.pyiceberg_properties() == {
        "uri": f"sqlite:///{tmp_path.resolve() / 'catalog.db'}",
        "warehouse": (tmp_path.resolve() / "warehouse").as_uri(),
    }


def test_default_spark_catalog_is_unchanged(tmp_path: Path) -> None:
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    conf = session_config(settings, [])
    assert conf["spark.sql.catalog.lake.uri"] == f"jdbc:sqlite:{settings.catalog_db}"
    assert conf["spark.sql.catalog.lake.warehouse"] == settings.warehouse.as_uri()
    assert not any("s3" in key or "jdbc.user" in key for key in conf)


def test_recorded_profile_moves_spark_and_pyiceberg_to_postgres_and_s3(tmp_path: Path) -> None:
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    path = write_profile(tmp_path, "trino", SHARED)
    assert path.stat().st_mode & 0o077 == 0
    assert read_profile(tmp_path) == ("trino", SHARED)
    assert lake_connection(settings) == SHARED
    conf = session_config(settings, [])
    prefix = "spark.sql.catalog.lake"
    assert conf[f"{prefix}.uri"] == SHARED.jdbc_url
    assert conf[f"{prefix}.jdbc.user"] == "finlake"
    assert conf[f"{prefix}.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert conf[f"{prefix}.s3.endpoint"] == "http://127.0.0.1:18333"
    assert conf[f"{prefix}.s3.path-style-access"] == "true"
    assert not (tmp_path / "warehouse").exists()
    properties = SHARED.pyiceberg_properties()
    assert properties["uri"] == "postgresql+psycopg2://finlake:p%40ss%2Fword@127.0.0.1:15432/lake"
    assert properties["s3.endpoint"] == "http://127.0.0.1:18333"
    assert forget_profile(tmp_path)
    assert lake_connection(settings).is_local


def test_environment_overrides_the_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_profile(tmp_path, "trino", SHARED)
    monkeypatch.setenv("FINLAKE_HOME", str(tmp_path))
    monkeypatch.setenv("FINLAKE_LAKE__CATALOG_URL", "jdbc:postgresql://db.internal:5432/lake")
    monkeypatch.setenv("FINLAKE_LAKE__WAREHOUSE", "s3://prod-lake/warehouse")
    lake = lake_connection(FinlakeSettings())
    # No keys: S3FileIO with the SDK's own credentials (a pod's IAM role), not Hadoop's s3://.
    assert (lake.jdbc_url, lake.warehouse, lake.s3) == (
        "jdbc:postgresql://db.internal:5432/lake",
        "s3://prod-lake/warehouse",
        S3Access(None, None, None, "us-east-1"),
    )
    conf = session_config(FinlakeSettings(), [], lake)
    assert conf["spark.sql.catalog.lake.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert conf["spark.sql.catalog.lake.client.region"] == "us-east-1"
    assert not [key for key in conf if "access-key" in key or "s3.endpoint" in key]
    properties = lake.pyiceberg_properties()
    assert properties["s3.region"] == "us-east-1"
    assert not [key for key in properties if "access-key" in key]
    # Keys in the environment are used as before.
    monkeypatch.setenv("FINLAKE_LAKE__S3_ACCESS_KEY_ID", "AKIA")
    monkeypatch.setenv("FINLAKE_LAKE__S3_SECRET_ACCESS_KEY", "secret")
    keyed = lake_connection(FinlakeSettings())
    assert keyed.s3 == S3Access(None, "AKIA", "secret", "us-east-1")
    assert keyed.pyiceberg_properties()["s3.access-key-id"] == "AKIA"
    monkeypatch.delenv("FINLAKE_LAKE__WAREHOUSE")
    with pytest.raises(ConfigurationError, match="FINLAKE_LAKE__WAREHOUSE"):
        lake_connection(FinlakeSettings())


def test_a_corrupt_profile_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "profile.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="forget-profile"):
        read_profile(tmp_path)


def test_table_locations_follow_the_warehouse(tmp_path: Path) -> None:
    assert MARKET_RAW.location_in("s3://lake/warehouse/") == "s3://lake/warehouse/market/raw"
    assert MARKET_RAW.location_in(tmp_path) == (tmp_path / "market" / "raw").as_uri()
