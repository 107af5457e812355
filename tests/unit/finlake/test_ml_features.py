from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from finlake.config import FinlakeSettings
from finlake.ml.features import MODEL_FEATURES, compute_feature_tables, derive
from finlake.ml.settings import MlSettings
from finlake.ml.store import TRANSACTION_COLUMNS, FeatureStoreError, FraudFeatureStore
from finlake.transactions.generate import generate_transactions

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
START = datetime(2026, 4, 1, tzinfo=UTC)
VALIDATED = pa.schema(
    [
        ("transaction_id", pa.string()), ("account_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")), ("amount", pa.decimal128(18, 2)),
        ("currency", pa.string()), ("merchant", pa.string()), ("country", pa.string()),
        ("channel", pa.string()), ("entry_mode", pa.string()), ("status", pa.string()),
        ("is_fraud", pa.bool_()),
    ]
)  # fmt: skip


def rows(
    *specs: tuple[str, str, timedelta, str, str, str], currencies: dict[str, str] | None = None
) -> pa.Table:
    """(id, account, offset from T0, amount, merchant, country) -> validated-shaped rows, in EUR
    unless ``currencies`` names another for the id."""
    return pa.Table.from_pylist(
        [
            {"transaction_id": i, "account_id": a, "timestamp": T0 + dt, "amount": Decimal(x),
             "currency": (currencies or {}).get(i, "EUR"), "merchant": m, "country": c,
             "channel": "pos", "entry_mode": "chip", "status": "approved", "is_fraud": False}
            for i, a, dt, x, m, c in specs
        ],
        schema=VALIDATED,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> FraudFeatureStore:
    return FraudFeatureStore(FinlakeSettings(home=tmp_path), MlSettings())


def test_windows_count_only_what_lies_inside_them() -> None:
    table = rows(
        ("a", "A", timedelta(0), "10.00", "m1", "DE"),
        ("b", "A", timedelta(minutes=30), "20.00", "m1", "DE"),
        ("c", "A", timedelta(minutes=95), "40.00", "m2", "DE"),
        ("d", "B", timedelta(minutes=45), "99.00", "m1", "FR"),
    )
    tables = {name: t.to_pandas() for name, t in compute_feature_tables(table).items()}
    history, amounts = tables["account_history"], tables["account_currency"]
    last = history[history.account_id == "A"].iloc[-1]
    assert (last.tx_count_1h, last.tx_count_24h, last.history_count) == (1, 3, 3)
    last = amounts[amounts.account_id == "A"].iloc[-1]
    assert (last.amount_sum_1h, last.amount_sum_24h, last.currency_tx_count) == (40.0, 70.0, 3)
    merchants = tables["account_merchant"]
    assert merchants[merchants.account_id == "A"].merchant_tx_count.tolist() == [1, 2, 1]


def test_a_transaction_sees_only_transactions_strictly_before_it(
    store: FraudFeatureStore,
) -> None:
    # b is joined at its own timestamp: neither b itself nor the later, huge c may count.
    table = rows(
        ("a", "A", timedelta(0), "10.00", "m1", "DE"),
        ("b", "A", timedelta(minutes=10), "20.00", "m1", "DE"),
        ("c", "A", timedelta(minutes=20), "5000.00", "m9", "US"),
    )
    store.refresh(table, until=T0 + timedelta(days=1))
    joined = store.historical(table.to_pandas()).set_index("transaction_id")
    assert pd.isna(joined.loc["a", "history_count"])
    assert joined.loc["b", "history_count"] == 1
    assert joined.loc["b", "amount_sum_1h"] == 10.0
    assert joined.loc["b", "merchant_tx_count"] == 1
    assert joined.loc["c", "amount_sum_1h"] == 30.0
    assert pd.isna(joined.loc["c", "merchant_tx_count"])
    features = derive(joined.reset_index()).set_index(joined.index)
    assert features.loc["c", "is_new_merchant"] == 1.0
    assert features.loc["c", "is_new_country"] == 1.0
    assert features.loc["b", "seconds_since_previous"] == 600.0


def test_transactions_at_the_same_moment_keep_their_history(store: FraudFeatureStore) -> None:
    # b and c share account and timestamp: Feast's file store keeps one entity row per key and
    # timestamp, so one of them used to come back without features (a "new" account). Both
    # see a only: neither itself nor its same-moment sibling.
    table = rows(
        ("a", "A", timedelta(0), "10.00", "m1", "DE"),
        ("b", "A", timedelta(hours=1), "20.00", "m2", "DE"),
        ("c", "A", timedelta(hours=1), "30.00", "m1", "DE"),
        ("d", "A", timedelta(hours=2), "40.00", "m1", "DE"),
    )
    store.refresh(table, until=T0 + timedelta(days=1))
    joined = store.historical(table.to_pandas())
    assert joined.transaction_id.tolist() == ["a", "b", "c", "d"]
    assert joined.history_count.fillna(0).tolist() == [0, 1, 1, 3]
    assert joined.country_tx_count.fillna(0).tolist() == [0, 1, 1, 3]
    assert joined.merchant_tx_count.fillna(0).tolist() == [0, 0, 1, 2]
    features = derive(joined).set_index(joined.transaction_id)
    for sibling in ("b", "c"):
        assert features.loc[sibling, "tx_count_24h"] == 1.0
        assert features.loc[sibling, "amount_sum_24h"] == 10.0
        assert features.loc[sibling, "seconds_since_previous"] == 3600.0
        assert features.loc[sibling, "is_new_country"] == 0.0
    assert features.loc["b", "is_new_merchant"] == 1.0
    assert features.loc["c", "is_new_merchant"] == 0.0
    assert features.loc["d", "tx_count_24h"] == 3.0


def test_windows_are_moved_to_the_scored_transactions_time(store: FraudFeatureStore) -> None:
    # A burst of three, then one payment 30 minutes later and one three days later: the stored
    # windows end at the previous transaction; the model must see the scored one's own windows.
    table = rows(
        ("a", "A", timedelta(0), "10.00", "m1", "DE"),
        ("b", "A", timedelta(minutes=1), "20.00", "m1", "DE"),
        ("c", "A", timedelta(minutes=2), "30.00", "m1", "DE"),
        ("d", "A", timedelta(minutes=32), "5.00", "m1", "DE"),
        ("e", "A", timedelta(days=3, minutes=32), "7.00", "m1", "DE"),
        ("f", "A", timedelta(days=11), "9.00", "m1", "DE"),
    )
    store.refresh(table, until=T0 + timedelta(days=12))
    joined = store.historical(table.to_pandas())
    features = derive(joined).set_index(joined.transaction_id)
    soon, later, much_later = features.loc["d"], features.loc["e"], features.loc["f"]
    assert (soon.tx_count_1h, soon.tx_count_24h, soon.amount_sum_1h) == (3.0, 3.0, 60.0)
    assert (later.tx_count_1h, later.tx_count_24h, later.declined_count_1h) == (0.0, 0.0, 0.0)
    assert (later.tx_count_7d, later.amount_sum_7d) == (4.0, 65.0)
    assert later.velocity_1h == 0.0
    assert later.amount_zscore == pytest.approx((7.0 - 65.0 / 4) / max(np.std([10, 20, 30, 5]), 1))
    assert (much_later.tx_count_7d, much_later.history_count) == (0.0, 5.0)
    assert np.isnan(much_later.amount_zscore)


def test_amounts_never_add_up_across_currencies(store: FraudFeatureStore) -> None:
    # EUR 40, EUR 40, BRL 295 within 20 minutes are not 375 of anything: the BRL payment has no
    # BRL history to compare with, and the EUR one after it sees the two EUR payments only.
    table = rows(
        ("a", "A", timedelta(0), "40.00", "m1", "DE"),
        ("b", "A", timedelta(minutes=10), "40.00", "m1", "DE"),
        ("c", "A", timedelta(minutes=20), "295.00", "m2", "BR"),
        ("d", "A", timedelta(minutes=30), "35.00", "m1", "DE"),
        ("e", "A", timedelta(minutes=40), "300.00", "m2", "BR"),
        currencies={"c": "BRL", "e": "BRL"},
    )
    store.refresh(table, until=T0 + timedelta(days=1))
    joined = store.historical(table.to_pandas())
    features = derive(joined).set_index(joined.transaction_id)
    brl = features.loc["c"]
    assert (brl.amount_sum_1h, brl.amount_sum_7d, brl.is_new_currency) == (0.0, 0.0, 1.0)
    assert np.isnan(brl.amount_zscore)
    assert np.isnan(brl.amount_to_mean)
    # Counts are the account's, whatever the currency.
    assert (brl.tx_count_1h, brl.history_count, brl.seconds_since_previous) == (2.0, 2.0, 600.0)
    eur = features.loc["d"]
    assert (eur.amount_sum_1h, eur.amount_sum_24h, eur.tx_count_1h) == (80.0, 80.0, 3.0)
    assert (eur.amount_zscore, eur.amount_to_mean, eur.is_new_currency) == (-5.0, 35 / 40, 0.0)
    again = features.loc["e"]
    assert (again.amount_sum_1h, again.amount_zscore, again.is_new_currency) == (295.0, 5.0, 0.0)
    assert features.is_new_currency.tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]


def test_amount_windows_move_from_the_previous_payment_in_that_currency(
    store: FraudFeatureStore,
) -> None:
    # The account paid in EUR a minute before c, but in BRL three days before: c's BRL windows
    # end three days back, so its last hour and day hold no BRL; its last 7 days hold a.
    table = rows(
        ("a", "A", timedelta(0), "100.00", "m2", "BR"),
        ("b", "A", timedelta(days=3), "10.00", "m1", "DE"),
        ("c", "A", timedelta(days=3, minutes=1), "120.00", "m2", "BR"),
        ("d", "A", timedelta(days=11), "10.00", "m1", "DE"),
        ("e", "A", timedelta(days=11, minutes=1), "50.00", "m2", "BR"),
        currencies={"a": "BRL", "c": "BRL", "e": "BRL"},
    )
    store.refresh(table, until=T0 + timedelta(days=12))
    joined = store.historical(table.to_pandas())
    features = derive(joined).set_index(joined.transaction_id)
    c = features.loc["c"]
    assert (c.tx_count_1h, c.seconds_since_previous) == (1.0, 60.0)
    assert (c.amount_sum_1h, c.amount_sum_24h, c.amount_sum_7d) == (0.0, 0.0, 100.0)
    assert (c.amount_zscore, c.amount_to_mean) == (20.0, 1.2)
    # BRL last paid 8 days before e: no 7-day statistics, but not a new currency either.
    e = features.loc["e"]
    assert (e.amount_sum_7d, e.is_new_currency) == (0.0, 0.0)
    assert np.isnan(e.amount_zscore)


def test_point_in_time_counts_match_a_brute_force_recount(store: FraudFeatureStore) -> None:
    generated = generate_transactions(
        rows=1_500, accounts=30, fraud_rate=0.03, seed=2, start=START, days=10
    ).select(list(TRANSACTION_COLUMNS))
    store.refresh(generated, until=START + timedelta(days=11))
    joined = store.historical(generated.to_pandas())
    frame = generated.to_pandas()

    def recount(account: str, moment: pd.Timestamp, window: str) -> int:
        # Everything strictly before the transaction, in the window ending at the previous one.
        earlier = frame.timestamp[(frame.account_id == account) & (frame.timestamp < moment)]
        return 0 if earlier.empty else int((earlier >= earlier.max() - pd.Timedelta(window)).sum())

    for column, window in (("tx_count_1h", "1h"), ("tx_count_24h", "24h")):
        expected = [
            recount(a, t, window) for a, t in zip(joined.account_id, joined.timestamp, strict=True)
        ]
        assert joined[column].fillna(0).astype(int).tolist() == expected
    before = [
        int(((frame.account_id == a) & (frame.timestamp < t)).sum())
        for a, t in zip(joined.account_id, joined.timestamp, strict=True)
    ]
    assert joined.history_count.fillna(0).astype(int).tolist() == before
    assert frame.groupby("account_id").currency.nunique().max() > 1  # travellers pay abroad

    def resum(account: str, currency: str, moment: pd.Timestamp) -> float:
        # The account's payments in this currency strictly before the transaction, in the 24 h
        # ending at the previous one of them.
        same = frame[
            (frame.account_id == account) & (frame.currency == currency)
            & (frame.timestamp < moment)
        ]  # fmt: skip
        if same.empty:
            return 0.0
        window = same[same.timestamp >= same.timestamp.max() - pd.Timedelta("24h")]
        return float(window.amount.sum())

    summed = [
        resum(a, c, t)
        for a, c, t in zip(joined.account_id, joined.currency, joined.timestamp, strict=True)
    ]
    assert joined.amount_sum_24h.fillna(0).tolist() == pytest.approx(summed)


def test_online_features_equal_offline_features_after_the_last_transaction(
    store: FraudFeatureStore,
) -> None:
    generated = generate_transactions(
        rows=800, accounts=12, fraud_rate=0.02, seed=9, start=START, days=7
    ).select(list(TRANSACTION_COLUMNS))
    store.refresh(generated, until=START + timedelta(days=8))
    frame = generated.to_pandas()
    later = START + timedelta(days=7, hours=3)
    # Each account in every currency it paid in, the first one also in a currency it never used.
    columns = ["account_id", "currency", "merchant", "country"]
    pairs = frame[columns].drop_duplicates(["account_id", "currency"])
    assert len(pairs) > frame.account_id.nunique()  # some pay in more than one currency
    never = pairs.iloc[:1].assign(currency="XTS")
    probes = pd.DataFrame(
        [
            {"account_id": a, "currency": cur, "merchant": m, "country": c, "timestamp": later,
             "amount": 12.5, "channel": "ecommerce", "entry_mode": "token"}
            for a, cur, m, c in pd.concat([pairs, never]).itertuples(index=False)
        ]
        + [{"account_id": "acc-unknown", "currency": "EUR", "merchant": "nowhere", "country": "ZZ",
            "timestamp": later, "amount": 3.0, "channel": "pos", "entry_mode": "chip"}]
    )  # fmt: skip
    offline = derive(store.historical(probes))
    online = derive(store.online(probes.to_dict("records")))
    assert list(online.columns) == list(MODEL_FEATURES)
    pd.testing.assert_frame_equal(online, offline, check_exact=False, rtol=1e-9)
    assert offline.iloc[-1].is_new_merchant == 1.0
    assert np.isnan(offline.iloc[-1].seconds_since_previous)
    assert offline.is_new_currency.tolist() == [0.0] * len(pairs) + [1.0, 1.0]


def test_online_amounts_are_per_currency_as_offline(store: FraudFeatureStore) -> None:
    table = rows(
        ("a", "A", timedelta(0), "40.00", "m1", "DE"),
        ("b", "A", timedelta(minutes=10), "40.00", "m1", "DE"),
        ("c", "A", timedelta(minutes=20), "295.00", "m2", "BR"),
        currencies={"c": "BRL"},
    )
    store.refresh(table, until=T0 + timedelta(days=1))
    probes = pd.DataFrame(
        [
            {"account_id": "A", "currency": currency, "merchant": "m3", "country": country,
             "timestamp": T0 + timedelta(minutes=30), "amount": 50.0, "channel": "pos",
             "entry_mode": "chip"}
            for currency, country in (("EUR", "DE"), ("BRL", "BR"), ("JPY", "JP"))
        ]
    )  # fmt: skip
    online = derive(store.online(probes.to_dict("records"))).set_index(probes.currency)
    offline = derive(store.historical(probes)).set_index(probes.currency)
    pd.testing.assert_frame_equal(online, offline, check_exact=False, rtol=1e-9)
    assert online.amount_sum_1h.to_dict() == {"EUR": 80.0, "BRL": 295.0, "JPY": 0.0}
    assert online.is_new_currency.to_dict() == {"EUR": 0.0, "BRL": 0.0, "JPY": 1.0}
    assert online.loc["EUR", "amount_zscore"] == 10.0
    assert np.isnan(online.loc["JPY", "amount_zscore"])
    assert set(online.tx_count_1h) == {3.0}


def test_features_of_other_rows_are_refreshed_before_a_join(store: FraudFeatureStore) -> None:
    burst = rows(
        ("a", "A", timedelta(0), "10.00", "m1", "DE"),
        *[(f"b{i}", "A", timedelta(minutes=10 + i), "1.00", "m1", "DE") for i in range(5)],
    )
    store.refresh(burst.slice(0, 1), until=T0 + timedelta(days=1))  # before the batch's rows
    assert store.ensure_current(burst) is not None  # the files were of other rows: refreshed
    joined = store.historical(burst.to_pandas())
    assert joined.history_count.fillna(0).astype(int).tolist() == [0, 1, 2, 3, 4, 5]
    assert store.ensure_current(burst) is None  # the same rows: nothing to do
    # A home whose files lack a view (written before amounts were kept per currency) is stale.
    store.files.account_currency.unlink()
    assert store.ensure_current(burst) is not None
    assert store.files.account_currency.exists()


def test_a_transaction_dated_just_ahead_is_materialized_online(store: FraudFeatureStore) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=3)  # the rules allow a few minutes ahead
    table = rows(("z", "Z", soon - T0, "7.00", "m1", "DE"))
    store.refresh(table)
    [history] = store.online(
        [{"account_id": "Z", "currency": "EUR", "merchant": "m1", "country": "DE"}]
    )[["history_count", "currency_tx_count"]].to_numpy()
    assert history.tolist() == [1, 1]


def test_online_features_before_any_refresh_are_a_clear_error(store: FraudFeatureStore) -> None:
    # POST /v1/predict maps FeatureStoreError to 404; Feast's own error was a 500.
    with pytest.raises(FeatureStoreError, match=r"no features to score with .*finlake ml features"):
        store.online([{"account_id": "acc1", "currency": "EUR", "merchant": "m1", "country": "DE"}])


IMPORT_PROBE = """
import os
import finlake.ml.store
from prometheus_client import CollectorRegistry, Counter, values
assert values.ValueClass is values.MutexValue, values.ValueClass
assert not {k for k in os.environ if k.lower().startswith("prometheus_multiproc")}, os.environ
first, second = CollectorRegistry(), CollectorRegistry()
Counter("probe", "one", registry=first).inc()
Counter("probe", "two", registry=second).inc()
assert second.get_sample_value("probe_total") == 1.0
"""


def test_importing_feast_keeps_prometheus_metrics_in_memory() -> None:
    # feast.metrics sets PROMETHEUS_MULTIPROC_DIR on import: every metric of one name then shared
    # a value across registries (ingestion and query API tests counted each other's errors).
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("prometheus_multiproc")}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_shared_registry_is_the_feature_store_s_postgres(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sqlalchemy.engine import make_url

    monkeypatch.setenv("FINLAKE_ML__FEATURE_REGISTRY", "postgres")
    monkeypatch.setenv("FINLAKE_ML__POSTGRES_HOST", "features-db")
    monkeypatch.setenv("FINLAKE_ML__POSTGRES_PASSWORD", "p@ss/w:rd?")
    config = MlSettings().registry_config(tmp_path)
    assert isinstance(config, dict)
    assert config["registry_type"] == "sql"
    url = make_url(config["path"])
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+psycopg", "features-db", 5432, "features",
    )  # fmt: skip
    assert url.username == "finlake"
    assert url.password == "p@ss/w:rd?"  # quoted in the URL, read back whole
    assert url.query["sslmode"] == "require"
    # The default: a file of the process's own.
    assert MlSettings(feature_registry="file").registry_config(tmp_path) == str(
        tmp_path / "registry.db"
    )
