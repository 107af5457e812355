"""``finlake ml train``: point-in-time training set, fraud classifier, MLflow run and registry.

The model is scikit-learn's histogram gradient boosting (native missing values: an account without
history, or without any in the transaction's currency, is NaN, not a made-up zero). The held-out
set is the latest quarter of the labelled transactions by time, as a model always scores the
future. A new version gets the ``champion`` alias only if its PR-AUC on that held-out set beats the
current champion's on the same rows: the rows after the latest transaction the champion trained on
(a version records it as the tag ``trained_until``), so that rows it learned from never judge it
(older data uploaded later moves the held-out quarter back into its training period). A champion
trained on other features (by a finlake before they changed) cannot score the ones computed now:
any new version replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import sklearn
from mlflow.models import infer_signature
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score
from skops import __version__ as skops_version

from finlake.config import FinlakeSettings
from finlake.errors import FinlakeError
from finlake.ml.features import MODEL_FEATURES, derive
from finlake.ml.registry import (
    champion_version,
    ensure_experiment,
    load_version,
    open_registry,
    takes_model_features,
)
from finlake.ml.settings import MlSettings
from finlake.ml.store import FraudFeatureStore, read_validated

EXPERIMENT = "finlake-fraud"
TRAINED_UNTIL = "trained_until"
"""Model version tag: the timestamp of the latest transaction the version was trained on."""
TEST_SHARE = 0.25
HISTOGRAM_TREES = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


class TrainingError(FinlakeError):
    """The labelled data cannot train a model (too few rows or one class only)."""


@dataclass(frozen=True)
class TrainingResult:
    """What ``train`` did and measured."""

    run_id: str
    version: str
    pr_auc: float
    roc_auc: float
    base_rate: float
    train_rows: int
    test_rows: int
    champion_before: str | None
    champion_pr_auc: float | None
    promoted: bool
    compared_rows: int = 0
    """Held-out rows the two were compared on (0: not compared)."""
    compared_pr_auc: float | None = None
    """This version's PR-AUC on those rows."""
    champion_trained_until: str | None = None
    champion_outdated: bool = False
    """The champion was trained on other features than finlake computes now: it cannot score
    them, so it is not compared but replaced."""

    @property
    def verdict(self) -> str:
        """One sentence on the alias decision."""
        new = f"version {self.version} (held-out PR-AUC {self.pr_auc:.4f})"
        if self.champion_before is None:
            return f"{new} is the first model: it becomes champion"
        if self.champion_outdated:
            return (
                f"{new} replaces champion version {self.champion_before}, which was trained on "
                "other features than finlake computes now: it becomes champion"
            )
        if self.champion_pr_auc is None:
            return (
                f"{new} cannot be compared with champion version {self.champion_before}: no "
                "held-out rows of both classes after the latest transaction it trained on "
                f"({self.champion_trained_until}); the champion stays"
            )
        old = f"champion version {self.champion_before} ({self.champion_pr_auc:.4f}"
        if self.compared_rows == self.test_rows:
            old += " on the same rows)"
        else:
            new = (
                f"{new}, {self.compared_pr_auc:.4f} on the {self.compared_rows:,} held-out rows "
                f"after the champion's training data ({self.champion_trained_until}),"
            )
            old += " on those)"
        if self.promoted:
            return f"{new} beats {old}: it becomes champion"
        return f"{new} does not beat {old}: the champion stays"


def training_set(store: FraudFeatureStore, validated: pa.Table) -> pd.DataFrame:
    """Labelled transactions with their point-in-time features, sorted by time."""
    frame = validated.to_pandas()
    frame = frame[frame["is_fraud"].notna()]
    if frame.empty:
        raise TrainingError("no labelled transactions (is_fraud) in transactions.validated")
    joined = store.historical(frame)
    return joined.sort_values("timestamp", kind="stable").reset_index(drop=True)


def split_by_time(frame: pd.DataFrame, test_share: float = TEST_SHARE) -> tuple[pd.DataFrame, ...]:
    """Train on the earlier transactions, hold out the latest ``test_share``."""
    cut = int(len(frame) * (1 - test_share))
    train, test = frame.iloc[:cut], frame.iloc[cut:]
    for name, part in (("training", train), ("held-out", test)):
        labels = part["is_fraud"].astype(bool)
        if labels.nunique() < 2:
            raise TrainingError(f"the {name} set has only one class: generate more labelled rows")
    return train, test


def fit(
    train: pd.DataFrame, seed: int = 0, params: dict[str, Any] | None = None
) -> HistGradientBoostingClassifier:
    """The fraud classifier fitted on ``train`` (``params`` override the defaults)."""
    model = HistGradientBoostingClassifier(
        **({"max_iter": 300, "learning_rate": 0.08, "max_leaf_nodes": 31, "l2_regularization": 1.0,
            "class_weight": "balanced", "random_state": seed} | (params or {}))
    )  # fmt: skip
    model.fit(derive(train), train["is_fraud"].astype(int))
    return model


def _scores(model: HistGradientBoostingClassifier, inputs: pd.DataFrame) -> np.ndarray:
    probabilities: np.ndarray = model.predict_proba(inputs[list(MODEL_FEATURES)])[:, 1]
    return probabilities


def train(
    settings: FinlakeSettings,
    ml: MlSettings,
    *,
    validated: pa.Table | None = None,
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> TrainingResult:
    """Train, log and register a model; move the champion alias only if it is better."""
    store = FraudFeatureStore(settings, ml)
    validated = validated if validated is not None else read_validated(settings)
    store.ensure_current(validated)
    rows = training_set(store, validated)
    train_rows, test_rows = split_by_time(rows)
    model = fit(train_rows, seed, params)
    test_inputs = derive(test_rows)
    labels = test_rows["is_fraud"].astype(int).to_numpy()
    scores = _scores(model, test_inputs)
    pr_auc = float(average_precision_score(labels, scores))
    client = open_registry(settings, ml)
    previous = champion_version(client, ml)
    champion_pr_auc = compared_pr_auc = champion_until = None
    champion_outdated = False
    compared = test_rows.iloc[:0]
    if previous is not None:
        champion_until = client.get_model_version(ml.model_name, previous).tags.get(TRAINED_UNTIL)
        champion = load_version(ml, previous)
        champion_outdated = not takes_model_features(champion)
        unseen = _unseen(test_rows, champion_until)
        if not champion_outdated and unseen["is_fraud"].astype(bool).nunique() == 2:
            compared = unseen
            truth = compared["is_fraud"].astype(int).to_numpy()
            inputs = derive(compared)
            champion_pr_auc = float(average_precision_score(truth, _scores(champion, inputs)))
            compared_pr_auc = float(average_precision_score(truth, _scores(model, inputs)))
    experiment_id = ensure_experiment(client, settings, EXPERIMENT)
    metrics = {
        "pr_auc": pr_auc,
        "roc_auc": float(roc_auc_score(labels, scores)),
        "base_rate": float(labels.mean()),
        "train_rows": float(len(train_rows)),
        "test_rows": float(len(test_rows)),
    }
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(model.get_params() | {"features": ",".join(MODEL_FEATURES)})
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(test_inputs, scores),
            registered_model_name=ml.model_name,
            # Stated, so MLflow does not inspect the working directory's project to guess them.
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops_version}"],
            # Our own trainer wrote the trees into our own registry.
            skops_trusted_types=[HISTOGRAM_TREES],
        )
    version = str(info.registered_model_version)
    client.set_model_version_tag(ml.model_name, version, "pr_auc", f"{pr_auc:.6f}")
    trained_until = pd.Timestamp(train_rows["timestamp"].max()).isoformat()
    client.set_model_version_tag(ml.model_name, version, TRAINED_UNTIL, trained_until)
    if previous is None or champion_outdated:
        promoted = True
    else:
        promoted = champion_pr_auc is not None and (compared_pr_auc or 0.0) > champion_pr_auc
    if promoted:
        client.set_registered_model_alias(ml.model_name, ml.champion_alias, version)
    return TrainingResult(
        run_id=run.info.run_id,
        version=version,
        pr_auc=pr_auc,
        roc_auc=metrics["roc_auc"],
        base_rate=metrics["base_rate"],
        train_rows=len(train_rows),
        test_rows=len(test_rows),
        champion_before=previous,
        champion_pr_auc=champion_pr_auc,
        promoted=promoted,
        compared_rows=len(compared),
        compared_pr_auc=compared_pr_auc,
        champion_trained_until=champion_until,
        champion_outdated=champion_outdated,
    )


def _unseen(test_rows: pd.DataFrame, trained_until: str | None) -> pd.DataFrame:
    """The held-out rows after ``trained_until`` (all of them for a version without the tag)."""
    if trained_until is None:
        return test_rows
    moments = pd.to_datetime(test_rows["timestamp"], utc=True)
    return test_rows[moments > pd.Timestamp(trained_until)]
