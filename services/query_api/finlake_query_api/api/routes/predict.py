"""POST /v1/predict scores one transaction online; GET /v1/transactions/predictions reads the
batch predictions. The champion model is re-resolved from its MLflow alias every few seconds, so a
newly promoted model serves without a restart."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from mlflow.exceptions import MlflowException
from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from finlake.lake.tables import TRANSACTIONS_PREDICTIONS
from finlake.ml.registry import NoChampionError
from finlake.ml.scoring import NotAfterHistoryError, OnlineScorer
from finlake.ml.settings import MlSettings
from finlake.ml.store import FeatureStoreError
from finlake.query import QueryError
from finlake.transactions.rules import EARLIEST_TIMESTAMP, WHITESPACE
from finlake_query_api.api.deps import ApiKeyDep, StateDep
from finlake_query_api.api.problems import PROBLEMS, problem_responses
from finlake_query_api.errors import ModelRegistryUnavailableError, asking_the_engine
from finlake_query_api.state import AppState

router = APIRouter(tags=["predictions"], responses=PROBLEMS)
EARLIEST = datetime.fromisoformat(EARLIEST_TIMESTAMP).replace(tzinfo=UTC)
Text = Annotated[str, Field(min_length=1, max_length=200)]


class TransactionIn(BaseModel):
    """One transaction to score, as the contract names its fields."""

    transaction_id: Text | None = Field(default=None, description="Echoed back if given.")
    account_id: Text = Field(description="Account (cardholder) the transaction is booked on.")
    timestamp: AwareDatetime = Field(description="When the transaction is being authorised.")
    amount: Decimal = Field(
        max_digits=18, decimal_places=2, description="Amount in currency units (two decimals)."
    )
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = Field(
        description="ISO 4217 code of the amount (amount features never mix currencies)."
    )
    merchant: Text = Field(description="Merchant name or id.")
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2 merchant country."
    )
    channel: Literal["pos", "contactless", "ecommerce", "atm", "transfer"]
    entry_mode: Literal["chip", "swipe", "contactless", "manual", "token"] | None = None

    @field_validator("timestamp")
    @classmethod
    def _not_before_1970(cls, value: datetime) -> datetime:
        # What the batch's rule timestamp_not_before_1970 quarantines has no features either.
        if value < EARLIEST:
            raise ValueError(f"must not be before {EARLIEST:%Y-%m-%d} (UTC)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _as_silver_stores_it(cls, data: Any) -> Any:
        # The online features are keyed by silver's values (transactions.rules: trimmed, country
        # and currency upper case, channel and entry mode lower case): " Shop" or "de" would miss
        # them and read as a new merchant or country.
        if not isinstance(data, dict):
            return data
        cased = {
            "country": str.upper,
            "currency": str.upper,
            "channel": str.lower,
            "entry_mode": str.lower,
        }
        return {
            key: cased.get(key, str)(value.strip(WHITESPACE)) if isinstance(value, str) else value
            for key, value in data.items()
        }

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "transaction_id": "tx000000000000001",
                    "account_id": "acc00000042",
                    "timestamp": "2026-11-26T12:00:00Z",
                    "amount": "4.99",
                    "currency": "EUR",
                    "merchant": "Pixel Games DE-00170",
                    "country": "DE",
                    "channel": "ecommerce",
                    "entry_mode": "manual",
                }
            ]
        }
    }


class PredictionOut(BaseModel):
    """The fraud score of one transaction and what it was based on."""

    transaction_id: str | None
    fraud_score: float = Field(description="Probability of fraud by the champion model.")
    is_fraud_predicted: bool
    threshold: float
    model_name: str
    model_version: str
    features: dict[str, float | None] = Field(description="The model's inputs, as computed.")


class StoredPrediction(BaseModel):
    """One row of transactions.predictions."""

    transaction_id: str
    account_id: str
    timestamp: datetime
    fraud_score: float
    is_fraud_predicted: bool
    threshold: float
    model_name: str
    model_version: str
    scored_at: datetime


class PredictionPage(BaseModel):
    """Batch predictions, newest transactions first."""

    predictions: list[StoredPrediction]


def _scorer(request: Request, state: AppState) -> tuple[OnlineScorer, MlSettings]:
    cached: tuple[OnlineScorer, MlSettings] | None = getattr(request.app.state, "ml_scorer", None)
    if cached is None:
        # A request waits for the registry: MLflow's defaults (7 retries, 120 s each) would hold
        # it for minutes when the registry is away, instead of a prompt 503 (or the known model).
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        ml = MlSettings()
        cached = (OnlineScorer(state.settings, ml), ml)
        request.app.state.ml_scorer = cached
    return cached


@router.post(
    "/v1/predict",
    summary="Score one transaction with the champion model",
    responses=problem_responses(409),
)
async def predict(
    _: ApiKeyDep, state: StateDep, request: Request, transaction: TransactionIn
) -> PredictionOut:
    row = transaction.model_dump(mode="python")
    row["amount"] = float(transaction.amount)
    try:
        scorer, ml = await run_in_threadpool(_scorer, request, state)
        [result] = await run_in_threadpool(scorer.score, [row])
    except (NoChampionError, FeatureStoreError) as error:
        # Nothing to score with yet (no champion model or no features): not found, not a fault.
        raise HTTPException(status_code=404, detail=str(error)) from error
    except NotAfterHistoryError as error:  # the account's state is already past it
        raise HTTPException(status_code=409, detail=str(error)) from error
    except MlflowException as error:  # the registry down or failing: worth a retry, no fault here
        raise ModelRegistryUnavailableError(
            "the model registry did not answer", cause=error
        ) from error
    return PredictionOut(
        transaction_id=transaction.transaction_id,
        fraud_score=result.fraud_score,
        is_fraud_predicted=result.is_fraud_predicted,
        threshold=ml.threshold,
        model_name=result.model_name,
        model_version=result.model_version,
        features=result.features,
    )


_COLUMNS = (
    "transaction_id, account_id, timestamp, fraud_score, is_fraud_predicted, threshold, "
    "model_name, model_version, scored_at"
)


@router.get("/v1/transactions/predictions", summary="Batch fraud predictions, newest first")
async def predictions(
    _: ApiKeyDep, state: StateDep,
    account_id: Annotated[str | None, Query(max_length=200)] = None,
    min_score: Annotated[float, Query(ge=0, le=1)] = 0.0,
    flagged_only: Annotated[bool, Query(description="Only predicted fraud.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PredictionPage:  # fmt: skip
    where, params = ["fraud_score >= ?"], [min_score]
    if account_id is not None:
        where.append("account_id = ?")
        params.append(account_id)
    if flagged_only:
        where.append("is_fraud_predicted")
    sql = (
        f"SELECT {_COLUMNS} FROM transactions.predictions WHERE {' AND '.join(where)} "
        f"ORDER BY timestamp DESC, transaction_id LIMIT {limit}"
    )
    engine = state.market.engine
    with asking_the_engine():
        try:
            snapshot = await run_in_threadpool(
                engine.snapshot_id, TRANSACTIONS_PREDICTIONS.identifier
            )
        except QueryError:  # TableNotFoundError, or Trino's word for a namespace not there yet
            snapshot = None
        if snapshot is None:  # nothing scored yet
            return PredictionPage(predictions=[])
        columns, rows = await run_in_threadpool(engine.query, sql, params)
    return PredictionPage(
        predictions=[StoredPrediction(**dict(zip(columns, row, strict=True))) for row in rows]
    )
