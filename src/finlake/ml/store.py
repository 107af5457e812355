"""The Feast feature store: definitions, refresh from the lake, point-in-time and online reads.

Offline store: Feast's file source over the Parquet that ``features.py`` exports from
``transactions.validated`` (under ``$FINLAKE_HOME/features``). Online store: SQLite under the same
folder by default, Redis or PostgreSQL by ``FINLAKE_ML__ONLINE_STORE``. The registry (the feature
definitions) is a file there too, or the PostgreSQL every pod of a cluster shares
(``FINLAKE_ML__FEATURE_REGISTRY``): the batch that materializes and the API pods that score then
read one set of definitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
from feast.errors import FeastObjectNotFoundException
from feast.types import Float64, Int64

from finlake.config import FinlakeSettings
from finlake.errors import FinlakeError
from finlake.lake.connection import open_catalog
from finlake.lake.tables import TRANSACTIONS_VALIDATED
from finlake.ml.features import (
    ACCOUNT_FEATURES,
    CURRENCY_FEATURES,
    FeatureFiles,
    derive,
    files_source,
    source_of,
    write_feature_files,
)
from finlake.ml.settings import FeatureRegistryKind, MlSettings, OnlineStoreKind

PROJECT = "finlake"
# How far back a feature row still counts; also how long a merchant stays "known".
FEATURE_TTL = timedelta(days=365)
# Entity timestamps are moved this far back so a transaction sees only strictly earlier ones.
STRICTLY_BEFORE = pd.Timedelta(milliseconds=1)
TRANSACTION_COLUMNS = (
    "transaction_id", "account_id", "timestamp", "amount", "currency", "merchant", "country",
    "channel", "entry_mode", "status", "is_fraud",
)  # fmt: skip

account = Entity(name="account", join_keys=["account_id"], value_type=ValueType.STRING)
merchant = Entity(name="merchant", join_keys=["merchant"], value_type=ValueType.STRING)
country = Entity(name="country", join_keys=["country"], value_type=ValueType.STRING)
currency = Entity(name="currency", join_keys=["currency"], value_type=ValueType.STRING)
ENTITIES = (account, merchant, country, currency)


class FeatureStoreError(FinlakeError):
    """The feature store has no data yet or could not be read."""


@dataclass(frozen=True)
class FeatureRefresh:
    """What one refresh wrote."""

    transactions: int
    account_rows: int
    materialized_until: datetime


def ml_home(settings: FinlakeSettings) -> Path:
    """Everything ML writes locally: features, online store, MLflow."""
    return settings.home.resolve() / "ml"


def _views(files: FeatureFiles) -> list[FeatureView]:
    def source(name: str, path: Path) -> FileSource:
        return FileSource(name=name, path=str(path), timestamp_field="event_timestamp")

    def fields(names: Sequence[str]) -> list[Field]:
        return [Field(name=name, dtype=Float64 if "amount" in name else Int64) for name in names]

    return [
        FeatureView(
            name="account_history",
            entities=[account],
            ttl=FEATURE_TTL,
            schema=fields(ACCOUNT_FEATURES),
            source=source("account_history_source", files.account_history),
            description="Per account, up to and including each transaction: 1 h/24 h/7 d counts.",
        ),
        FeatureView(
            name="account_currency",
            entities=[account, currency],
            ttl=FEATURE_TTL,
            schema=fields(CURRENCY_FEATURES),
            source=source("account_currency_source", files.account_currency),
            description="Per account and currency, up to and including each transaction: amounts.",
        ),
        FeatureView(
            name="account_merchant",
            entities=[account, merchant],
            ttl=FEATURE_TTL,
            schema=[Field(name="merchant_tx_count", dtype=Int64)],
            source=source("account_merchant_source", files.account_merchant),
            description="How often the account paid this merchant so far.",
        ),
        FeatureView(
            name="account_country",
            entities=[account, country],
            ttl=FEATURE_TTL,
            schema=[Field(name="country_tx_count", dtype=Int64)],
            source=source("account_country_source", files.account_country),
            description="How often the account paid in this country so far.",
        ),
    ]


VIEW_KEYS = {
    "account_history": ["account_id"],
    "account_currency": ["account_id", "currency"],
    "account_merchant": ["account_id", "merchant"],
    "account_country": ["account_id", "country"],
}
FEATURE_REFS = [
    *(f"account_history:{name}" for name in ACCOUNT_FEATURES),
    *(f"account_currency:{name}" for name in CURRENCY_FEATURES),
    "account_merchant:merchant_tx_count",
    "account_country:country_tx_count",
]


@dataclass
class FraudFeatureStore:
    """The project's Feast store and the paths it uses."""

    settings: FinlakeSettings
    ml: MlSettings
    _feast: FeatureStore | None = field(default=None, init=False, repr=False, compare=False)
    _offline_feast: FeatureStore | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def folder(self) -> Path:
        """Feast's repo folder: Parquet offline data, registry, SQLite online store."""
        return ml_home(self.settings) / "features"

    @property
    def files(self) -> FeatureFiles:
        """The offline Parquet files."""
        return FeatureFiles(self.folder / "offline")

    def store(self) -> FeatureStore:
        """The Feast ``FeatureStore`` of this home, made once: each one opens its own connection
        to a Redis or PostgreSQL online store (POST /v1/predict asks for every request)."""
        if self._feast is None:
            self._feast = self._new_store(
                self.ml.registry_config(self.folder), self.ml.online_store_config(self.folder)
            )
        return self._feast

    def offline(self) -> FeatureStore:
        """The store the point-in-time joins read: its definitions name this home's offline
        files. With a shared registry that is a registry file of this home's own, since the
        shared one names the files of whichever process applied last (the batch's driver)."""
        if self.ml.feature_registry is FeatureRegistryKind.FILE:
            return self.store()
        if self._offline_feast is None:
            local = self.ml.model_copy(
                update={
                    "feature_registry": FeatureRegistryKind.FILE,
                    "online_store": OnlineStoreKind.SQLITE,  # its tables only, never materialized
                }
            )
            self._offline_feast = self._new_store(
                local.registry_config(self.folder), local.online_store_config(self.folder)
            )
        return self._offline_feast

    def _new_store(self, registry: str | dict[str, Any], online: dict[str, Any]) -> FeatureStore:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = RepoConfig(
            project=PROJECT,
            provider="local",
            registry=registry,
            online_store=online,
            offline_store={"type": "file"},
            entity_key_serialization_version=3,
            repo_path=self.folder,
        )
        return FeatureStore(config=config)

    def close(self) -> None:
        """Close the connections the stores opened (Feast's PostgreSQL and SQLite online stores
        and its SQL registry close theirs only when collected); the next use opens new ones."""
        stores = (self._feast, self._offline_feast)
        self._feast = self._offline_feast = None
        for store in stores:
            if store is not None:
                _close_connections(store)

    def __enter__(self) -> FraudFeatureStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def refresh(self, validated: pa.Table, *, until: datetime | None = None) -> FeatureRefresh:
        """Recompute the offline features, (re)apply the definitions, materialize online.

        Online, every row up to ``until`` counts; by default now or, when later, just after the
        latest transaction (the rules let a timestamp run a few minutes ahead of its upload, and
        Feast leaves out rows after the end it is given)."""
        if validated.num_rows == 0:
            raise FeatureStoreError("transactions.validated is empty: run the batch first")
        files = write_feature_files(validated, self.files.folder)
        store = self.store()
        store.apply([*ENTITIES, *_views(files)])
        latest = pc.max(validated.column("timestamp")).as_py()
        latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
        end = until or max(datetime.now(UTC), latest + timedelta(microseconds=1))
        store.materialize(start_date=end - FEATURE_TTL, end_date=end)
        if (offline := self.offline()) is not store:
            offline.apply([*ENTITIES, *_views(files)])
        return FeatureRefresh(
            transactions=validated.num_rows,
            account_rows=pa.parquet.read_metadata(files.account_history).num_rows,
            materialized_until=end,
        )

    def ensure_current(self, validated: pa.Table) -> FeatureRefresh | None:
        """Refresh unless the offline features were computed from exactly ``validated`` (the rows
        a training set or a scoring run joins against them): files from an earlier snapshot (a
        refresh after the batch turned off or failed, another home) would miss the latest
        transactions of every window. Returns the refresh, or None when none was needed."""
        if files_source(self.files) == source_of(validated):
            return None
        return self.refresh(validated)

    def historical(self, transactions: pd.DataFrame) -> pd.DataFrame:
        """Raw features of each transaction as of just before it (Feast's point-in-time join)."""
        if not self.files.account_history.exists():
            raise FeatureStoreError("no features yet: run `finlake ml features` first")
        entities = transactions.reset_index(drop=True).copy()
        entities["row_key"] = range(len(entities))
        entities["event_timestamp"] = (
            pd.to_datetime(entities["timestamp"], utc=True) - STRICTLY_BEFORE
        )
        # One join per view: Feast's file store drops an entity row from the whole result when
        # a view has rows for its key but all of them later (a first visit to a merchant), so the
        # views are joined separately and a missing match stays a null (no history).
        for view, keys in VIEW_KEYS.items():
            entities = entities.merge(
                self._view_features(view, entities[[*keys, "event_timestamp"]]),
                on=[*keys, "event_timestamp"],
                how="left",
            )
        return entities.sort_values("row_key").drop(columns=["row_key"]).reset_index(drop=True)

    def _view_features(self, view: str, lookups: pd.DataFrame) -> pd.DataFrame:
        """One view's features for each distinct (keys, event_timestamp) of ``lookups``.

        Feast's file store keeps one entity row per join keys and timestamp (drop_duplicates,
        keep="last"): two transactions of an account at the same moment would lose all features
        of one of them. Their features are the same anyway (both see only what lies strictly
        before that moment, neither the other), so each pair is asked for once and joined back
        onto every row that shares it.
        """
        refs = [ref for ref in FEATURE_REFS if ref.startswith(f"{view}:")]
        pairs = lookups.drop_duplicates().reset_index(drop=True)
        pairs["pair_key"] = range(len(pairs))
        try:
            found = self.offline().get_historical_features(entity_df=pairs, features=refs).to_df()
        except FeastObjectNotFoundException as error:  # files, but no definitions here
            raise FeatureStoreError(
                f"no feature definitions in this home ({error}): run `finlake ml features`"
            ) from error
        names = [ref.split(":", 1)[1] for ref in refs]
        features = pairs.merge(found[["pair_key", *names]], on="pair_key", how="left")
        return features.drop(columns=["pair_key"])

    def online(self, rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
        """Raw features of new transactions from the online store (latest state per key)."""
        keys = [{entity.join_key: r[entity.join_key] for entity in ENTITIES} for r in rows]
        try:
            found = self.store().get_online_features(features=FEATURE_REFS, entity_rows=keys)
        except FeastObjectNotFoundException as error:  # nothing applied to this home yet
            raise FeatureStoreError(
                f"no features to score with ({error}): run `finlake ml features` first"
            ) from error
        features = pd.DataFrame(found.to_dict())
        frame = pd.DataFrame(list(rows))
        extra = [c for c in features.columns if c not in frame.columns]
        return pd.concat([frame.reset_index(drop=True), features[extra]], axis=1)


def _close_connections(store: FeatureStore) -> None:
    online = store._get_provider().online_store
    for attribute in ("_conn", "_conn_pool"):
        if (connection := getattr(online, attribute, None)) is not None:
            connection.close()
            setattr(online, attribute, None)
    registry = store.registry
    engines = {getattr(registry, name, None) for name in ("write_engine", "read_engine")}
    for engine in engines:
        if engine is not None:
            engine.dispose()


def read_validated(settings: FinlakeSettings) -> pa.Table:
    """The silver transactions the features and the model use."""
    catalog = open_catalog(settings)
    if not catalog.table_exists(TRANSACTIONS_VALIDATED.identifier):
        raise FeatureStoreError("transactions.validated does not exist yet: run the batch first")
    table = catalog.load_table(TRANSACTIONS_VALIDATED.identifier)
    return table.scan(selected_fields=TRANSACTION_COLUMNS).to_arrow()


def model_inputs(raw: pd.DataFrame) -> pd.DataFrame:
    """The classifier's input columns from transactions joined with raw features."""
    return derive(raw)
