"""Features -> training -> registry -> predictions on a real Iceberg lake, Feast and MLflow.

The PR-AUC bar: at least 0.5 and at least ten times the held-out fraud base rate. A classifier
that ranks at random has a PR-AUC equal to the base rate (about 0.03 here); the four generated
patterns are labelled and visible in the features, so a model that learned them must rank most
fraud above almost all genuine payments, not just do somewhat better than chance.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.ensemble import HistGradientBoostingClassifier

from finlake.config import FinlakeSettings
from finlake.lake.connection import lake_connection, open_catalog
from finlake.lake.tables import TRANSACTIONS_VALIDATED
from finlake.ml.features import MODEL_FEATURES
from finlake.ml.registry import (
    ChampionCache,
    OutdatedChampionError,
    champion_version,
    ensure_experiment,
    open_registry,
)
from finlake.ml.scoring import score_new_transactions
from finlake.ml.settings import MlSettings
from finlake.ml.store import FraudFeatureStore, read_validated
from finlake.ml.training import EXPERIMENT, HISTOGRAM_TREES, TrainingResult, train
from finlake.transactions.generate import generate_transactions
from finlake.transactions.iceberg import ensure_table
from finlake_query_api.config import Settings
from finlake_query_api.main import create_app
from tests.conftest import free_port

START = datetime(2026, 6, 1, tzinfo=UTC)
ROWS = 6_000
API_KEY = "ml-test-key-0123456789abcdef0123456789"
WEAK = {"max_iter": 1, "max_depth": 1}


@dataclass(frozen=True)
class Trained:
    settings: FinlakeSettings
    ml: MlSettings
    weak: TrainingResult
    strong: TrainingResult
    again: TrainingResult
    older: TrainingResult


def write_validated(settings: FinlakeSettings) -> None:
    generated = generate_transactions(
        rows=ROWS, accounts=150, fraud_rate=0.03, seed=21, start=START, days=21
    )
    table = ensure_table(
        open_catalog(settings), TRANSACTIONS_VALIDATED, lake_connection(settings).warehouse
    )
    now = datetime.now(UTC)
    lineage = {
        "upload_id": pa.array(["upload-test"] * ROWS),
        "row_number": pa.array(range(1, ROWS + 1), pa.int64()),
        "received_at": pa.array([now] * ROWS, pa.timestamp("us", tz="UTC")),
        "validated_at": pa.array([now] * ROWS, pa.timestamp("us", tz="UTC")),
    }
    for name, column in lineage.items():
        generated = generated.append_column(name, column)
    table.append(
        generated.select(TRANSACTIONS_VALIDATED.column_names).cast(table.schema().as_arrow())
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    settings = FinlakeSettings(home=tmp_path_factory.mktemp("ml-lake"))
    ml = MlSettings(alias_check_s=0)
    write_validated(settings)
    validated = read_validated(settings)
    FraudFeatureStore(settings, ml).refresh(validated, until=START + timedelta(days=22))
    weak = train(settings, ml, validated=validated, params=WEAK)
    strong = train(settings, ml, validated=validated, params={"max_iter": 150})
    again = train(settings, ml, validated=validated, params={"max_iter": 150})
    # Only the older rows (as if the lake held a backfill): held out are rows the champion
    # trained on, which must not judge it.
    early = pc.less(validated.column("timestamp"), pa.scalar(START + timedelta(days=12)))
    older = train(settings, ml, validated=validated.filter(early), params={"max_iter": 150})
    FraudFeatureStore(settings, ml).refresh(validated, until=START + timedelta(days=22))
    return Trained(settings, ml, weak, strong, again, older)


def test_the_model_ranks_fraud_far_above_the_base_rate(trained: Trained) -> None:
    result = trained.strong
    assert 0.0 < result.base_rate < 0.1
    assert result.pr_auc >= max(0.5, 10 * result.base_rate), result
    assert result.test_rows == ROWS // 4


def test_champion_moves_only_to_a_better_model(trained: Trained) -> None:
    weak, strong, again = trained.weak, trained.strong, trained.again
    assert (weak.champion_before, weak.promoted) == (None, True)
    assert strong.champion_before == weak.version
    assert strong.champion_pr_auc is not None
    assert strong.compared_pr_auc is not None
    assert strong.champion_pr_auc < strong.compared_pr_auc
    assert strong.promoted
    assert "beats" in strong.verdict
    # Same data and parameters: as good, not better, so the champion stays.
    assert again.champion_before == strong.version
    assert again.champion_pr_auc == pytest.approx(again.compared_pr_auc)
    assert not again.promoted
    assert "the champion stays" in again.verdict
    # Trained on older rows only: every held-out row lies in the champion's training period.
    assert trained.older.champion_before == strong.version
    assert (trained.older.compared_rows, trained.older.promoted) == (0, False)
    assert "cannot be compared with champion version" in trained.older.verdict
    client = open_registry(trained.settings, trained.ml)
    assert champion_version(client, trained.ml) == strong.version


def test_batch_scoring_writes_each_transaction_once(trained: Trained) -> None:
    # Two runs at once (the hourly batch's and a person's `finlake ml score`): one scores.
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: score_new_transactions(trained.settings, trained.ml), "ab"))
    first = max(runs, key=lambda run: run.scored)
    assert sorted((run.scored, run.already_scored) for run in runs) == [(0, ROWS), (ROWS, 0)]
    assert first.model_version == trained.strong.version
    assert 0 < first.flagged < ROWS
    second = score_new_transactions(trained.settings, trained.ml)
    assert (second.scored, second.already_scored) == (0, ROWS)


def test_predict_endpoint_serves_the_champion_and_follows_the_alias(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINLAKE_ML__ALIAS_CHECK_S", "0")
    settings = Settings.model_validate(
        {"home": trained.settings.home, "api": {"api_keys": [API_KEY], "refresh_interval_s": 3600}}
    )
    probe = {
        "transaction_id": "probe-1", "account_id": "acc00000003",
        "timestamp": (START + timedelta(days=21, hours=1)).isoformat(), "amount": "3.17",
        "currency": "BRL", "merchant": "Pixel Games DE-00170", "country": "BR",
        "channel": "ecommerce", "entry_mode": "manual",
    }  # fmt: skip
    headers = {"X-API-Key": API_KEY}
    with TestClient(create_app(settings)) as client:
        first = client.post("/v1/predict", json=probe, headers=headers)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["model_version"] == trained.strong.version
        assert 0.0 <= body["fraud_score"] <= 1.0
        assert body["features"]["is_new_country"] == 1.0
        # Never paid in Brazil, so never in reais: no amounts to compare the probe's with.
        assert body["features"]["is_new_currency"] == 1.0
        assert body["features"]["amount_zscore"] is None
        open_registry(trained.settings, trained.ml).set_registered_model_alias(
            trained.ml.model_name, trained.ml.champion_alias, trained.weak.version
        )
        moved = client.post("/v1/predict", json=probe, headers=headers)
        assert moved.json()["model_version"] == trained.weak.version
        open_registry(trained.settings, trained.ml).set_registered_model_alias(
            trained.ml.model_name, trained.ml.champion_alias, trained.strong.version
        )
        bad = client.post("/v1/predict", json={**probe, "amount": "x"}, headers=headers)
        assert bad.status_code == 422
        # Online features are each account's state after its latest transaction: one from
        # before that would be scored with later transactions in its windows.
        past = client.post("/v1/predict", json={**probe, "timestamp": START.isoformat()},
                           headers=headers)  # fmt: skip
        assert past.status_code == 409, past.text
        assert "is not after account acc00000003's latest transaction" in past.json()["detail"]


def test_a_champion_trained_on_other_features_is_replaced(trained: Trained) -> None:
    # The champion of a finlake before the features changed (no is_new_currency): it cannot
    # score what derive computes now, so it serves nothing and any new version replaces it.
    ml = trained.ml.model_copy(update={"model_name": "finlake-fraud-before"})
    columns = [name for name in MODEL_FEATURES if name != "is_new_currency"]
    inputs = pd.DataFrame(np.random.default_rng(0).random((40, len(columns))), columns=columns)
    outdated = HistGradientBoostingClassifier(max_iter=2).fit(inputs, np.arange(40) % 2)
    client = open_registry(trained.settings, trained.ml)
    with mlflow.start_run(experiment_id=ensure_experiment(client, trained.settings, EXPERIMENT)):
        info = mlflow.sklearn.log_model(
            outdated, name="model", registered_model_name=ml.model_name,
            pip_requirements=["scikit-learn"], skops_trusted_types=[HISTOGRAM_TREES],
        )  # fmt: skip
    before = str(info.registered_model_version)
    client.set_registered_model_alias(ml.model_name, ml.champion_alias, before)
    with pytest.raises(OutdatedChampionError, match="trained on other features"):
        ChampionCache(client, ml).get()
    result = train(trained.settings, ml, validated=read_validated(trained.settings), params=WEAK)
    assert (result.champion_before, result.champion_outdated, result.promoted) == (
        before, True, True,
    )  # fmt: skip
    assert result.champion_pr_auc is None
    assert "which was trained on other features" in result.verdict
    assert ChampionCache(client, ml).get().version == result.version


def test_the_known_champion_is_served_while_the_registry_does_not_answer(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    ml = trained.ml.model_copy(update={"alias_check_s": 0})
    cache = ChampionCache(open_registry(trained.settings, trained.ml), ml)
    served = cache.get()
    away = f"http://127.0.0.1:{free_port()}"  # nothing listens: the registry is away
    cache._client = MlflowClient(tracking_uri=away, registry_uri=away)
    assert cache.get() is served
    with pytest.raises(MlflowException):  # never loaded: nothing to serve meanwhile
        ChampionCache(MlflowClient(tracking_uri=away, registry_uri=away), ml).get()


def test_predictions_endpoint_reads_the_batch_predictions(trained: Trained) -> None:
    score_new_transactions(trained.settings, trained.ml)
    settings = Settings.model_validate(
        {"home": trained.settings.home, "api": {"api_keys": [API_KEY], "refresh_interval_s": 3600}}
    )
    with TestClient(create_app(settings)) as client:
        page = client.get(
            "/v1/transactions/predictions", params={"limit": 5}, headers={"X-API-Key": API_KEY}
        )
        assert page.status_code == 200, page.text
        rows = page.json()["predictions"]
        assert len(rows) == 5
        assert {row["model_version"] for row in rows} == {trained.strong.version}
        flagged = client.get(
            "/v1/transactions/predictions",
            params={"flagged_only": True, "limit": 1000},
            headers={"X-API-Key": API_KEY},
        ).json()["predictions"]
        assert flagged
        assert all(row["is_fraud_predicted"] for row in flagged)


def test_ml_needs_a_validated_table(tmp_path: Path) -> None:
    from finlake.ml.store import FeatureStoreError

    with pytest.raises(FeatureStoreError, match="run the batch first"):
        read_validated(FinlakeSettings(home=tmp_path))
