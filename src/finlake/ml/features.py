"""Per-account fraud features, point-in-time correct, from ``transactions.validated``.

Four feature tables, one row per transaction event, each describing the account's history *up to
and including* that event (keyed by its timestamp):

- ``account_history``: counts over 1 h / 24 h / 7 d, declined count over 1 h, all-time count, time
  of the latest transaction, across all currencies (a count is a count);
- ``account_currency``: per account and currency, sums over 1 h / 24 h / 7 d, mean and standard
  deviation of amounts over 7 d, all-time count, time of the latest transaction in that currency.
  Amounts are never added across currencies (EUR 40 and BRL 295 are not 335 of anything), and
  there are no exchange rates to convert them with: a payment in a currency the account has not
  used in the last 7 days has no mean to compare with (its z-score is NaN, which the model takes);
- ``account_merchant``: how often the account paid this merchant so far;
- ``account_country``: how often the account paid in this country so far.

A transaction at time ``t`` is joined with the latest rows at or before ``t - 1 ms`` (Feast's
point-in-time join, see ``store.py``), so it sees only transactions strictly before it; online, the
latest row per key is exactly that state for the next transaction. ``derive`` then adds what needs
the transaction itself (time since the previous one, amount z-score, velocity, new merchant / new
country / new currency flags) and moves the windows to the transaction's own time: the stored
windows end at the previous transaction (of the account for the counts, in the transaction's
currency for the amounts), so a window shorter than the time since then holds nothing any more (a
payment three days after a burst sees no transaction in its last hour or day; the 7-day window
still holds the burst). A window longer than that gap keeps the previous one's content, which may
still count transactions that left it in between. The same ``derive`` runs for training, batch
scoring and ``POST /v1/predict``, so online and offline agree.

The windows are computed by DuckDB in-process: one SQL pass with RANGE window frames over the
validated rows (Arrow from PyIceberg), no JVM needed to train or score on a laptop, and the result
is the Parquet that Feast's file offline store reads anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HOUR_MS = 3_600_000
ACCOUNT_FEATURES = (
    "tx_count_1h", "tx_count_24h", "tx_count_7d", "declined_count_1h", "history_count",
    "last_transaction_ms",
)  # fmt: skip
CURRENCY_FEATURES = (
    "amount_sum_1h", "amount_sum_24h", "amount_sum_7d", "amount_mean_7d", "amount_std_7d",
    "currency_tx_count", "currency_last_transaction_ms",
)  # fmt: skip
CHANNEL_CODES = {"pos": 0, "contactless": 1, "ecommerce": 2, "atm": 3, "transfer": 4}
ENTRY_CODES = {"chip": 0, "swipe": 1, "contactless": 2, "manual": 3, "token": 4}
# What the classifier sees, in this order. The amounts are in the transaction's own currency.
MODEL_FEATURES = (
    "amount", "hour_of_day", "channel_code", "entry_mode_code",
    "tx_count_1h", "tx_count_24h", "tx_count_7d",
    "amount_sum_1h", "amount_sum_24h", "amount_sum_7d", "declined_count_1h",
    "history_count", "seconds_since_previous", "amount_zscore", "amount_to_mean",
    "velocity_1h", "is_new_merchant", "is_new_country", "is_new_currency",
)  # fmt: skip

_ACCOUNT_WINDOWS: dict[str, int | None] = {
    "tx_count_1h": HOUR_MS, "tx_count_24h": 24 * HOUR_MS, "tx_count_7d": 7 * 24 * HOUR_MS,
    "declined_count_1h": HOUR_MS, "history_count": None,
}  # fmt: skip
"""The account's counts with the length of their window (None: all history)."""
_CURRENCY_WINDOWS = {
    "amount_sum_1h": HOUR_MS, "amount_sum_24h": 24 * HOUR_MS, "amount_sum_7d": 7 * 24 * HOUR_MS,
}  # fmt: skip
"""The sums in one currency with the length of their window."""

_EVENTS = """
SELECT account_id, currency, merchant, country, "timestamp" AS event_timestamp,
       epoch_ms("timestamp") AS ms, CAST(amount AS DOUBLE) AS amount,
       CASE WHEN status = 'declined' THEN 1 ELSE 0 END AS declined
FROM validated
"""


def _windows(keys: str) -> str:
    """The SQL's window frames: each key's transactions by time, up to the current one."""
    frame = f"PARTITION BY {keys} ORDER BY ms RANGE"
    return f"""
WINDOW h1 AS ({frame} BETWEEN {HOUR_MS} PRECEDING AND CURRENT ROW),
       d1 AS ({frame} BETWEEN {24 * HOUR_MS} PRECEDING AND CURRENT ROW),
       d7 AS ({frame} BETWEEN {7 * 24 * HOUR_MS} PRECEDING AND CURRENT ROW),
       ever AS ({frame} UNBOUNDED PRECEDING)"""


# Rows of one key at the same moment are peers in every frame, so they hold the same values: one
# of them is kept.
_ACCOUNT_SQL = f"""
WITH e AS ({_EVENTS})
SELECT account_id, event_timestamp,
    count(*) OVER h1 AS tx_count_1h, count(*) OVER d1 AS tx_count_24h,
    count(*) OVER d7 AS tx_count_7d, sum(declined) OVER h1 AS declined_count_1h,
    count(*) OVER ever AS history_count, ms AS last_transaction_ms
FROM e
{_windows("account_id")}
QUALIFY row_number() OVER (PARTITION BY account_id, ms ORDER BY merchant) = 1
ORDER BY account_id, event_timestamp
"""
_CURRENCY_SQL = f"""
WITH e AS ({_EVENTS})
SELECT account_id, currency, event_timestamp,
    sum(amount) OVER h1 AS amount_sum_1h, sum(amount) OVER d1 AS amount_sum_24h,
    sum(amount) OVER d7 AS amount_sum_7d,
    avg(amount) OVER d7 AS amount_mean_7d, coalesce(stddev_pop(amount) OVER d7, 0) AS amount_std_7d,
    count(*) OVER ever AS currency_tx_count, ms AS currency_last_transaction_ms
FROM e
{_windows("account_id, currency")}
QUALIFY row_number() OVER (PARTITION BY account_id, currency, ms) = 1
ORDER BY account_id, currency, event_timestamp
"""
_PAIR_SQL = """
WITH e AS ({events})
SELECT account_id, {key}, event_timestamp,
    count(*) OVER (PARTITION BY account_id, {key} ORDER BY ms RANGE UNBOUNDED PRECEDING)
        AS {key}_tx_count
FROM e
QUALIFY row_number() OVER (PARTITION BY account_id, {key}, ms) = 1
ORDER BY account_id, {key}, event_timestamp
"""


@dataclass(frozen=True)
class FeatureFiles:
    """The Parquet files Feast's offline store reads (one per feature view)."""

    folder: Path

    @property
    def account_history(self) -> Path:
        """Per account: the counts."""
        return self.folder / "account_history.parquet"

    @property
    def account_currency(self) -> Path:
        """Per account and currency: the amounts."""
        return self.folder / "account_currency.parquet"

    @property
    def account_merchant(self) -> Path:
        """Per account and merchant."""
        return self.folder / "account_merchant.parquet"

    @property
    def account_country(self) -> Path:
        """Per account and country."""
        return self.folder / "account_country.parquet"

    @property
    def paths(self) -> tuple[Path, ...]:
        """All of them."""
        return (
            self.account_history, self.account_currency, self.account_merchant,
            self.account_country,
        )  # fmt: skip


def compute_feature_tables(validated: pa.Table) -> dict[str, pa.Table]:
    """The four feature tables of ``validated`` transactions (the silver columns)."""
    connection = duckdb.connect()
    try:
        connection.register("validated", validated)
        return {
            "account_history": connection.sql(_ACCOUNT_SQL).arrow().read_all(),
            "account_currency": connection.sql(_CURRENCY_SQL).arrow().read_all(),
            "account_merchant": connection.sql(_PAIR_SQL.format(events=_EVENTS, key="merchant"))
            .arrow()
            .read_all(),
            "account_country": connection.sql(_PAIR_SQL.format(events=_EVENTS, key="country"))
            .arrow()
            .read_all(),
        }
    finally:
        connection.close()


SOURCE_KEY = b"finlake.source"
"""Parquet metadata key of the feature files: which validated rows they were computed from."""


def source_of(validated: pa.Table) -> str:
    """What identifies the rows features were computed from: their count and latest timestamp
    (silver only grows, so a batch that adds rows changes both or the count)."""
    latest = pc.max(validated.column("timestamp")).as_py() if validated.num_rows else None
    return f"{validated.num_rows}:{latest.isoformat() if latest is not None else '-'}"


def files_source(files: FeatureFiles) -> str | None:
    """The source the feature files were computed from (None: no files, not all of them, as
    written by a finlake with fewer feature views, or written before the source was recorded)."""
    if not all(path.exists() for path in files.paths):
        return None
    metadata = pq.read_schema(files.account_history).metadata or {}
    value = metadata.get(SOURCE_KEY)
    return value.decode() if value is not None else None


def write_feature_files(validated: pa.Table, folder: Path) -> FeatureFiles:
    """Compute the feature tables and write them where Feast's file sources point."""
    files = FeatureFiles(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = source_of(validated).encode()
    for name, table in compute_feature_tables(validated).items():
        timestamps = table.column("event_timestamp").cast(pa.timestamp("us", tz="UTC"))
        table = table.set_column(
            table.schema.get_field_index("event_timestamp"), "event_timestamp", timestamps
        )
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), SOURCE_KEY: source})
        target = getattr(files, name)
        staging = target.with_suffix(".parquet.tmp")
        pq.write_table(table, staging)
        staging.replace(target)
    return files


def derive(frame: pd.DataFrame) -> pd.DataFrame:
    """Model features of transactions joined with their history, windows moved to each one's time.

    ``frame`` holds the transaction (``timestamp``, ``amount``, ``channel``, ``entry_mode``) and
    the raw feature columns as retrieved from Feast (null where the account, or the account in
    the transaction's currency, has no history).
    """
    moment = pd.to_datetime(frame["timestamp"], utc=True)
    ms = (moment - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    amount = frame["amount"].astype(float)
    out = pd.DataFrame(index=frame.index)
    out["amount"] = amount
    out["hour_of_day"] = moment.dt.hour.astype(float)
    out["channel_code"] = frame["channel"].map(CHANNEL_CODES).astype(float)
    out["entry_mode_code"] = frame["entry_mode"].map(ENTRY_CODES).astype(float)
    gap_ms = ms.astype(float) - _numbers(frame["last_transaction_ms"])
    # The amounts' windows end at the previous transaction in this one's currency.
    currency_gap_ms = ms.astype(float) - _numbers(frame["currency_last_transaction_ms"])
    for windows, gap in ((_ACCOUNT_WINDOWS, gap_ms), (_CURRENCY_WINDOWS, currency_gap_ms)):
        for name, window_ms in windows.items():
            value = _numbers(frame[name]).fillna(0.0)
            # Windowed values end at the previous transaction: empty once it is further back.
            out[name] = value if window_ms is None else value.where(gap <= window_ms, 0.0)
    out["seconds_since_previous"] = gap_ms / 1000.0
    # NaN (nothing in this currency yet) compares False: no 7-day statistics.
    recent = currency_gap_ms <= 7 * 24 * HOUR_MS
    mean = _numbers(frame["amount_mean_7d"]).where(recent)
    std = _numbers(frame["amount_std_7d"]).where(recent)
    out["amount_zscore"] = (amount - mean) / np.maximum(std, 1.0)
    out["amount_to_mean"] = amount / np.maximum(mean.abs(), 1.0)
    # Last hour's count against the 7-day hourly average.
    out["velocity_1h"] = out["tx_count_1h"] / np.maximum(out["tx_count_7d"] / 168.0, 1.0 / 168.0)
    for flag, seen in (
        ("is_new_merchant", "merchant_tx_count"),
        ("is_new_country", "country_tx_count"),
        ("is_new_currency", "currency_tx_count"),
    ):
        out[flag] = (_numbers(frame[seen]).fillna(0) == 0).astype(float)
    return out[list(MODEL_FEATURES)]


def _numbers(column: pd.Series) -> pd.Series:
    """A raw feature column as floats, NaN where it is null (no history for its key)."""
    return pd.to_numeric(column, errors="coerce").astype(float)
