"""The clusters' online store: features materialized to a real PostgreSQL read back exactly as the
local SQLite store gives them (the PostgreSQL of `finlake stack up --with trino`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from pandas.testing import assert_frame_equal

from finlake.config import FinlakeSettings
from finlake.ml.settings import FeatureRegistryKind, MlSettings, OnlineStoreKind
from finlake.ml.store import TRANSACTION_COLUMNS, FeatureStoreError, FraudFeatureStore
from finlake.stack.credentials import local_credentials
from finlake.stack.manager import Stack
from finlake.transactions.generate import generate_transactions

START = datetime(2026, 4, 1, tzinfo=UTC)


def postgres_settings(stack: Stack, **more: object) -> MlSettings:
    """The feature store on the stack's PostgreSQL (loopback, no TLS)."""
    catalog_db = stack.settings.postgres
    password = local_credentials(stack.settings.home).postgres_password
    return MlSettings(
        online_store=OnlineStoreKind.POSTGRES, postgres_host=catalog_db.host,
        postgres_port=catalog_db.port, postgres_database=catalog_db.database,
        postgres_user=catalog_db.user, postgres_password=password,
        postgres_sslmode="disable", **more,
    )  # type: ignore[arg-type]  # fmt: skip


def generated_keys(seed: int) -> tuple[pa.Table, list[dict[str, str]]]:
    """Transactions of a few accounts and their (account, currency, merchant, country) keys, one
    unknown."""
    generated = generate_transactions(
        rows=600, accounts=8, fraud_rate=0.02, seed=seed, start=START, days=5
    ).select(list(TRANSACTION_COLUMNS))
    frame = generated.to_pandas()
    columns = ["account_id", "currency", "merchant", "country"]
    keys = frame[columns].drop_duplicates().to_dict("records")
    keys.append(
        {"account_id": "acc-unknown", "currency": "EUR", "merchant": "nowhere", "country": "ZZ"}
    )
    return generated, keys


def test_postgres_online_features_equal_the_sqlite_ones(
    trino_profile: Stack, tmp_path: Path
) -> None:
    postgres = postgres_settings(trino_profile)
    generated, keys = generated_keys(seed=4)
    online = {}
    for name, ml in (("postgres", postgres), ("sqlite", MlSettings())):
        with FraudFeatureStore(FinlakeSettings(home=tmp_path / name), ml) as store:
            store.refresh(generated, until=START + timedelta(days=6))
            online[name] = store.online(keys)
    assert len(online["postgres"]) == len(keys)
    assert online["postgres"]["history_count"].notna().sum() == len(keys) - 1
    assert_frame_equal(online["postgres"], online["sqlite"], check_dtype=False)
    assert pd.isna(online["postgres"].iloc[-1]["history_count"])  # no history: null


def test_a_pod_scores_with_the_features_another_pod_materialized(
    trino_profile: Stack, tmp_path: Path
) -> None:
    """As in a cluster: the transactions batch's driver applies the definitions and materializes;
    a query API pod, with a home of its own, reads them through the shared PostgreSQL registry."""
    shared = postgres_settings(trino_profile, feature_registry=FeatureRegistryKind.POSTGRES)
    generated, keys = generated_keys(seed=9)
    # An API pod that started before the batch ever ran: nothing to score with yet.
    early = FraudFeatureStore(FinlakeSettings(home=tmp_path / "early-api-pod"), shared)
    with pytest.raises(FeatureStoreError, match="ml features"):
        early.online(keys)
    with FraudFeatureStore(FinlakeSettings(home=tmp_path / "batch-driver"), shared) as batch:
        batch.refresh(generated, until=START + timedelta(days=6))
        materialized = batch.online(keys)

    with FraudFeatureStore(FinlakeSettings(home=tmp_path / "api-pod"), shared) as api:
        served = api.online(keys)
    assert served["history_count"].notna().sum() == len(keys) - 1
    assert_frame_equal(served, materialized)
    # The early pod scores as soon as the batch has applied and materialized.
    with early:
        assert_frame_equal(early.online(keys), materialized)
    # Training elsewhere: the point-in-time joins read that home's own files, not the files the
    # shared registry names (the batch driver's, of other transactions).
    trained_on, _ = generated_keys(seed=11)
    frame = trained_on.to_pandas()
    with FraudFeatureStore(FinlakeSettings(home=tmp_path / "trainer"), shared) as trainer:
        trainer.refresh(trained_on, until=START + timedelta(days=6))
        with FraudFeatureStore(FinlakeSettings(home=tmp_path / "batch-driver"), shared) as batch:
            batch.refresh(generated, until=START + timedelta(days=6))  # the next hourly run
        joined = trainer.historical(frame)
    with FraudFeatureStore(FinlakeSettings(home=tmp_path / "alone"), MlSettings()) as alone:
        alone.refresh(trained_on, until=START + timedelta(days=6))
        assert_frame_equal(joined, alone.historical(frame))
    # The same pod with a registry file of its own has no definitions to score with.
    alone = postgres_settings(trino_profile)
    with (
        FraudFeatureStore(FinlakeSettings(home=tmp_path / "api-pod-alone"), alone) as api,
        pytest.raises(FeatureStoreError, match="ml features"),
    ):
        api.online(keys)
