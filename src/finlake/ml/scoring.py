"""Predictions: batch scoring into ``transactions.predictions``; one transaction online."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from finlake.config import FinlakeSettings
from finlake.errors import FinlakeError
from finlake.lake.connection import lake_connection, open_catalog
from finlake.lake.locks import catalog_lock
from finlake.lake.tables import TRANSACTIONS_PREDICTIONS
from finlake.ml.features import MODEL_FEATURES, derive
from finlake.ml.registry import ChampionCache, ServingModel, open_registry
from finlake.ml.settings import MlSettings
from finlake.ml.store import FraudFeatureStore, read_validated
from finlake.transactions.iceberg import ensure_table


class NotAfterHistoryError(FinlakeError):
    """A transaction to score online is not after its account's latest known transaction."""


@dataclass(frozen=True)
class ScoreResult:
    """What one batch scoring run wrote."""

    scored: int
    flagged: int
    already_scored: int
    model_version: str


@dataclass(frozen=True)
class OnlineScore:
    """The score of one transaction and what it was based on."""

    fraud_score: float
    is_fraud_predicted: bool
    model_name: str
    model_version: str
    features: dict[str, float | None]


def fraud_scores(model: ServingModel, inputs: pd.DataFrame) -> np.ndarray:
    """Probabilities of fraud for model inputs (``MODEL_FEATURES`` columns)."""
    probabilities: np.ndarray = model.model.predict_proba(inputs[list(MODEL_FEATURES)])[:, 1]
    return probabilities


def _scored_ids(settings: FinlakeSettings) -> pa.Array:
    catalog = open_catalog(settings)
    if not catalog.table_exists(TRANSACTIONS_PREDICTIONS.identifier):
        return pa.array([], pa.string())
    table = catalog.load_table(TRANSACTIONS_PREDICTIONS.identifier)
    return table.scan(selected_fields=("transaction_id",)).to_arrow().column(0).combine_chunks()


def score_new_transactions(
    settings: FinlakeSettings, ml: MlSettings, *, validated: pa.Table | None = None
) -> ScoreResult:
    """Score validated transactions that have no prediction yet with the champion.

    One run at a time per lake (the hourly batch scores after each run, and a person may run
    ``finlake ml score`` meanwhile): two runs that both found the same rows unscored would both
    append their predictions."""
    model = ChampionCache(open_registry(settings, ml), ml).get()
    with catalog_lock(open_catalog(settings), "transactions-predictions"):
        return _score_new(settings, ml, model, validated)


def _score_new(
    settings: FinlakeSettings, ml: MlSettings, model: ServingModel, validated: pa.Table | None
) -> ScoreResult:
    rows = validated if validated is not None else read_validated(settings)
    done = _scored_ids(settings)
    fresh = rows.filter(pc.invert(pc.is_in(rows.column("transaction_id"), value_set=done)))
    if fresh.num_rows == 0:
        return ScoreResult(0, 0, rows.num_rows, model.version)
    store = FraudFeatureStore(settings, ml)
    store.ensure_current(rows)  # the features of exactly these rows, or the windows miss some
    raw = store.historical(fresh.to_pandas())
    scores = fraud_scores(model, derive(raw))
    now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    flagged = scores >= ml.threshold
    predictions = pa.table(
        {
            "transaction_id": pa.array(raw["transaction_id"], pa.string()),
            "account_id": pa.array(raw["account_id"], pa.string()),
            "timestamp": pa.array(
                pd.to_datetime(raw["timestamp"], utc=True), pa.timestamp("us", tz="UTC")
            ),
            "fraud_score": pa.array(scores, pa.float64()),
            "is_fraud_predicted": pa.array(flagged),
            "threshold": pa.array(np.full(len(scores), ml.threshold)),
            "model_name": pa.array([ml.model_name] * len(scores), pa.string()),
            "model_version": pa.array([model.version] * len(scores), pa.string()),
            "scored_at": pa.array([now.as_py()] * len(scores), pa.timestamp("us", tz="UTC")),
        }
    )
    table = ensure_table(
        open_catalog(settings), TRANSACTIONS_PREDICTIONS, lake_connection(settings).warehouse
    )
    table.append(predictions)
    return ScoreResult(
        len(scores), int(flagged.sum()), rows.num_rows - fresh.num_rows, model.version
    )


class OnlineScorer:
    """Scores single transactions from the online store with the current champion."""

    def __init__(self, settings: FinlakeSettings, ml: MlSettings) -> None:
        self._ml = ml
        self._store = FraudFeatureStore(settings, ml)
        self._champion = ChampionCache(open_registry(settings, ml), ml)

    def score(self, transactions: Sequence[dict[str, Any]]) -> list[OnlineScore]:
        """Scores of transactions (keys: account_id, timestamp, amount, currency, merchant,
        country, ...).

        Raises NotAfterHistoryError for a transaction at or before its account's latest one in
        the online store: that store holds each account's state after its latest transaction,
        so the windows would count later transactions (or the transaction itself)."""
        model = self._champion.get()
        raw = self._store.online(transactions)
        moment = pd.to_datetime(raw["timestamp"], utc=True)
        ms = (moment - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        latest = pd.to_numeric(raw["last_transaction_ms"], errors="coerce")
        for i in np.flatnonzero((latest >= ms).to_numpy()):
            known = datetime.fromtimestamp(float(latest.iloc[i]) / 1000, UTC).isoformat()
            tid = raw["transaction_id"].iloc[i] if "transaction_id" in raw else None
            raise NotAfterHistoryError(
                f"{f'transaction {tid}' if tid else 'the transaction'} at "
                f"{moment.iloc[i].isoformat()} is "
                f"not after account {raw['account_id'].iloc[i]}'s latest transaction in the online "
                f"store ({known}): online features describe the account after that one; a "
                "transaction already in the lake is scored by the batch (`finlake ml score`)"
            )
        inputs = derive(raw)
        scores = fraud_scores(model, inputs)
        return [
            OnlineScore(
                fraud_score=float(score),
                is_fraud_predicted=bool(score >= self._ml.threshold),
                model_name=self._ml.model_name,
                model_version=model.version,
                features={
                    name: None if pd.isna(value) else float(value)
                    for name, value in inputs.iloc[i].items()
                },
            )
            for i, score in enumerate(scores)
        ]
