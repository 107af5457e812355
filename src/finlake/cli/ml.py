"""``finlake ml``: features into Feast, training into MLflow, batch predictions.

Needs ``finlake[ml]``; the commands import it when they run, so the CLI works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from finlake.cli.output import console
from finlake.config import get_settings
from finlake.errors import ConfigurationError

if TYPE_CHECKING:
    from finlake.ml.settings import MlSettings

app = typer.Typer(
    help="Fraud features (Feast), training (MLflow), predictions.", no_args_is_help=True
)


def _ml_settings() -> MlSettings:
    try:
        import mlflow  # noqa: F401

        # Feast only through finlake.ml, which keeps it from switching Prometheus to files.
        import finlake.ml.store  # noqa: F401
        from finlake.ml.settings import MlSettings
    except ImportError as error:
        raise ConfigurationError(
            f"`finlake ml` needs the ml extra (pip install 'finlake[ml]'): {error}"
        ) from error
    return MlSettings()


@app.command("features")
def features() -> None:
    """Recompute the features from transactions.validated and materialize them online."""
    ml = _ml_settings()
    from finlake.ml.store import FraudFeatureStore, read_validated

    settings = get_settings()
    with FraudFeatureStore(settings, ml) as store:
        done = store.refresh(read_validated(settings))
    console.print(
        f"features of {done.transactions:,} transactions written; online store up to "
        f"{done.materialized_until:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )


@app.command("train")
def train(
    seed: Annotated[int, typer.Option(help="Random seed of the classifier.")] = 0,
) -> None:
    """Train on the point-in-time training set; promote to champion only if better."""
    ml = _ml_settings()
    from finlake.ml.training import train as train_model

    result = train_model(get_settings(), ml, seed=seed)
    table = Table("metric", "value", title=f"{ml.model_name} version {result.version}")
    for name, value in (
        ("PR-AUC (held out)", f"{result.pr_auc:.4f}"),
        ("ROC-AUC (held out)", f"{result.roc_auc:.4f}"),
        ("fraud base rate (held out)", f"{result.base_rate:.4f}"),
        ("training rows", f"{result.train_rows:,}"),
        ("held-out rows", f"{result.test_rows:,}"),
    ):
        table.add_row(name, value)
    console.print(table)
    console.print(result.verdict, highlight=False)


@app.command("score")
def score() -> None:
    """Score validated transactions without a prediction into transactions.predictions."""
    ml = _ml_settings()
    from finlake.ml.scoring import score_new_transactions

    result = score_new_transactions(get_settings(), ml)
    console.print(
        f"scored {result.scored:,} transactions with {ml.model_name} version "
        f"{result.model_version}: {result.flagged:,} flagged as fraud "
        f"({result.already_scored:,} already had a prediction)",
        highlight=False,
    )
