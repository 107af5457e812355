"""The MLflow tracking server and model registry, and the serving side's view of ``champion``."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from finlake.config import FinlakeSettings
from finlake.errors import FinlakeError
from finlake.ml.features import MODEL_FEATURES
from finlake.ml.settings import MlSettings
from finlake.ml.store import ml_home

log = logging.getLogger(__name__)


class NoChampionError(FinlakeError):
    """No model version carries the champion alias yet."""


class OutdatedChampionError(NoChampionError):
    """The champion was trained on other features than finlake computes now: none can score."""


def mlflow_folder(settings: FinlakeSettings) -> Path:
    """The local tracking database and artifacts."""
    return ml_home(settings) / "mlflow"


def open_registry(settings: FinlakeSettings, ml: MlSettings) -> MlflowClient:
    """A client of the tracking server and registry (the process-wide MLflow URIs point there)."""
    # No usage reports to the MLflow or Feast projects from a user's machine.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("FEAST_USAGE", "False")
    # Nor a copy of whatever uv project the command happens to run in, logged with every model.
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
    folder = mlflow_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    uri = ml.mlflow_uri(folder)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(client: MlflowClient, settings: FinlakeSettings, name: str) -> str:
    """The experiment's id; created with its artifacts under home (not ./mlruns of the cwd)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    artifacts = mlflow_folder(settings) / "artifacts"
    return str(client.create_experiment(name, artifact_location=artifacts.resolve().as_uri()))


def champion_version(client: MlflowClient, ml: MlSettings) -> str | None:
    """The version the champion alias points at, or None."""
    try:
        return str(client.get_model_version_by_alias(ml.model_name, ml.champion_alias).version)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


_LOADING = threading.Lock()
"""One model loads at a time in a process: two threads loading a model at once (the hourly
batch's scoring and a person's, in one process) could fail on CPython 3.11
(python/cpython#106905)."""


def load_version(ml: MlSettings, version: str) -> Any:
    """The fitted model of ``version`` of the registered model."""
    with _LOADING:
        return mlflow.sklearn.load_model(f"models:/{ml.model_name}/{version}")


def takes_model_features(model: Any) -> bool:
    """Whether ``model`` was fitted on the features ``derive`` computes now (not so a champion
    of a finlake before they changed: scikit-learn refuses inputs with other column names)."""
    return tuple(getattr(model, "feature_names_in_", ())) == MODEL_FEATURES


@dataclass(frozen=True)
class ServingModel:
    """A loaded model version."""

    version: str
    model: Any


class ChampionCache:
    """The champion model for serving: re-reads the alias at most every ``ttl_s`` seconds."""

    def __init__(self, client: MlflowClient, ml: MlSettings) -> None:
        self._client = client
        self._ml = ml
        self._lock = threading.Lock()
        self._current: ServingModel | None = None
        self._checked = float("-inf")

    def get(self) -> ServingModel:
        """The champion now (a moved alias is picked up within ``alias_check_s``)."""
        with self._lock:
            if self._current is None or time.monotonic() - self._checked >= self._ml.alias_check_s:
                try:
                    version = champion_version(self._client, self._ml)
                except MlflowException:
                    if self._current is None:
                        raise
                    # The registry away: serve the champion known until it answers again.
                    log.warning("model registry did not answer; serving version %s meanwhile",
                                self._current.version)  # fmt: skip
                    version = self._current.version
                self._checked = time.monotonic()
                if version is None:
                    raise NoChampionError(
                        f"model {self._ml.model_name!r} has no {self._ml.champion_alias!r} "
                        "version yet: run `finlake ml train`"
                    )
                if self._current is None or self._current.version != version:
                    self._current = ServingModel(version, load_version(self._ml, version))
            if not takes_model_features(self._current.model):
                raise OutdatedChampionError(
                    f"the {self._ml.champion_alias!r} version {self._current.version} of model "
                    f"{self._ml.model_name!r} was trained on other features than finlake "
                    "computes now: run `finlake ml train`"
                )
            return self._current
