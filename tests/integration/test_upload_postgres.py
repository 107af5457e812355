"""Uploads on a clusters' lake (PostgreSQL catalog, S3 warehouse: `stack up --with trino`)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from finlake.lake.connection import lake_connection, open_catalog
from finlake.lake.tables import TRANSACTIONS_RAW, TRANSACTIONS_UPLOADS
from finlake.stack.manager import Stack
from finlake.transactions.generate import write_transactions_csv
from finlake.transactions.upload import open_lake
from tests.integration.conftest import empty_lake
from tests.upload_race import race_the_same_upload


def test_the_same_content_uploaded_twice_at_once_lands_once(
    trino_profile: Stack, tmp_path: Path
) -> None:
    settings = trino_profile.settings
    assert lake_connection(settings).sqlalchemy_url().startswith("postgresql")
    csv = tmp_path / "retried.csv"
    write_transactions_csv(csv, rows=3000, accounts=30, fraud_rate=0.01, seed=17)
    try:
        first, second = race_the_same_upload(
            lambda: open_lake(settings), csv.read_bytes(), csv.name
        )
        assert (first.is_duplicate, second.is_duplicate) == (False, True)
        catalog = open_catalog(settings)
        mine = pc.field("upload_id") == first.upload_id
        raw = catalog.load_table(TRANSACTIONS_RAW.identifier).scan().to_arrow().filter(mine)
        assert raw.num_rows == 3000
        ledger = catalog.load_table(TRANSACTIONS_UPLOADS.identifier).scan().to_arrow()
        assert ledger.filter(mine).num_rows == 1
    finally:
        # The profile's lake is shared by the session's modules: leave no transactions namespace.
        empty_lake(settings, "transactions")
        open_catalog(settings).drop_namespace("transactions")
