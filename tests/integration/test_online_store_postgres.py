"""The clusters' online store: features materialized to a real PostgreSQL read back exactly as the
local SQLite store gives them (the PostgreSQL of `finlake stack up --with trino`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from finlake.config import FinlakeSettings
from finlake.ml.settings import MlSettings, OnlineStoreKind
from finlake.ml.store import TRANSACTION_COLUMNS, FraudFeatureStore
from finlake.stack.credentials import local_credentials
from finlake.stack.manager import Stack
from finlake.transactions.generate import generate_transactions

START = datetime(2026, 4, 1, tzinfo=UTC)


# Feast's PostgreSQL online store keeps one connection per FeatureStore and has no close (its
# close() is the base class's no-op): the store's connection is only dropped when it is collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_postgres_online_features_equal_the_sqlite_ones(
    trino_profile: Stack, tmp_path: Path
) -> None:
    catalog_db = trino_profile.settings.postgres
    password = local_credentials(trino_profile.settings.home).postgres_password
    postgres = MlSettings(
        online_store=OnlineStoreKind.POSTGRES, postgres_host=catalog_db.host,
        postgres_port=catalog_db.port, postgres_database=catalog_db.database,
        postgres_user=catalog_db.user, postgres_password=password,
        postgres_sslmode="disable",  # the local stack's server listens on loopback, without TLS
    )  # fmt: skip
    generated = generate_transactions(
        rows=600, accounts=8, fraud_rate=0.02, seed=4, start=START, days=5
    ).select(list(TRANSACTION_COLUMNS))
    frame = generated.to_pandas()
    keys = frame[["account_id", "merchant", "country"]].drop_duplicates().to_dict("records")
    keys.append({"account_id": "acc-unknown", "merchant": "nowhere", "country": "ZZ"})
    online = {}
    for name, ml in (("postgres", postgres), ("sqlite", MlSettings())):
        store = FraudFeatureStore(FinlakeSettings(home=tmp_path / name), ml)
        store.refresh(generated, until=START + timedelta(days=6))
        online[name] = store.online(keys)
    assert len(online["postgres"]) == len(keys)
    assert online["postgres"]["history_count"].notna().sum() == len(keys) - 1
    assert_frame_equal(online["postgres"], online["sqlite"], check_dtype=False)
    assert pd.isna(online["postgres"].iloc[-1]["history_count"])  # no history: null
