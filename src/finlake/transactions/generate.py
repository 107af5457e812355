"""Seeded, vectorised generator of realistic card transactions with labelled fraud patterns.

The accounts, the merchants and what they spend (genuine and fraudulent) come from
``finlake.transactions.spending``; this module turns those rows into Arrow tables with the
contract's types and writes them as CSV.

Rows are built with numpy and Arrow per block of accounts (about a million rows each), so ten
million rows take seconds per block, not minutes, and memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from finlake.errors import ContractViolation
from finlake.transactions.reference import CATEGORIES, CHANNELS, COUNTRIES
from finlake.transactions.spending import (
    CH,
    ENTRY_MODES,
    FRAUD_PATTERNS,
    PER_EUR,
    Merchants,
    Rows,
    concat,
    fraud_episodes,
    genuine_spending,
    merchant_pool,
)

# The CSV columns, in the contract's order (contracts/avro/transaction.avsc).
TRANSACTION_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("account_id", pa.string()),
        ("card_id", pa.string()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("amount", pa.decimal128(18, 2)),
        ("currency", pa.string()),
        ("merchant", pa.string()),
        ("merchant_category", pa.string()),
        ("country", pa.string()),
        ("channel", pa.string()),
        ("entry_mode", pa.string()),
        ("status", pa.string()),
        ("is_fraud", pa.bool_()),
    ]
)
BLOCK_ROWS = 1_000_000
_ID_MULTIPLIER = 25_214_903_917  # odd and not a multiple of 5: a bijection modulo 10**15
_ID_SPACE = 10**15
_MAX_EUR = np.array([5_000.0, 250.0, 5_000.0, 1_000.0, 10_000.0])  # per CHANNELS entry
_STATUSES = pa.array(["approved", "declined"])


@dataclass(frozen=True)
class GenerationSummary:
    """What one generated file holds."""

    path: Path
    rows: int
    fraud_rows: int
    accounts: int
    start: datetime
    end: datetime


def _money(amount: np.ndarray) -> pa.Array:
    """Amounts as decimal(18,2), built from integer cents without a per-row Python loop."""
    cents = np.round(amount * 100).astype(np.int64)
    words = np.column_stack([cents, np.where(cents < 0, -1, 0)]).astype(np.int64).ravel()
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words)])


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _table(
    rows: Rows, merchants: Merchants, first_account: int, first_row: int, seed: int, pattern: bool
) -> pa.Table:
    order = np.argsort(rows.ts, kind="stable")
    r = Rows(**{f: getattr(rows, f)[order] for f in rows.__dict__})
    country = merchants.country[r.merchant]
    category = merchants.category[r.merchant]
    local = r.amount_eur * PER_EUR[country]
    cap = _MAX_EUR[r.channel] * PER_EUR[country]
    local = np.clip(local, -cap, cap)
    atm = r.channel == CH["atm"]
    local[atm] = np.maximum(20.0, np.round(local[atm] / 20.0) * 20.0)
    local = np.where(np.abs(local) < 0.01, 0.01, local)
    offset = np.random.default_rng([seed, 7]).integers(0, _ID_SPACE)
    serial = (np.arange(len(order), dtype=np.int64) + first_row) * _ID_MULTIPLIER + offset
    no_card = r.channel == CH["transfer"]
    card_numbers = (first_account + r.account) * 2 + r.card
    columns = {
        "transaction_id": _ids("tx", serial % _ID_SPACE, 15),
        "account_id": _ids("acc", first_account + r.account, 8),
        "card_id": pc.if_else(pa.array(no_card), None, _ids("card", card_numbers, 9)),
        "timestamp": pa.array(r.ts, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "amount": _money(local),
        "currency": pa.array([c.currency for c in COUNTRIES]).take(pa.array(country)),
        "merchant": merchants.names.take(pa.array(r.merchant)),
        "merchant_category": pa.array([k.mcc for k in CATEGORIES]).take(pa.array(category)),
        "country": pa.array([c.code for c in COUNTRIES]).take(pa.array(country)),
        "channel": pa.array(CHANNELS).take(pa.array(r.channel)),
        "entry_mode": ENTRY_MODES.take(pa.array(r.entry, mask=r.entry < 0)),
        "status": _STATUSES.take(pa.array(r.declined.astype(np.int64))),
        "is_fraud": pa.array(r.pattern >= 0),
    }
    table = pa.table(columns, schema=TRANSACTION_SCHEMA)
    if pattern:
        names = pa.array(FRAUD_PATTERNS).take(pa.array(r.pattern, mask=r.pattern < 0))
        table = table.append_column("fraud_pattern", names)
    return table


def default_start(days: int) -> datetime:
    """Midnight UTC ``days`` days before today: the data ends where today begins."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def iter_transactions(
    *,
    rows: int,
    accounts: int,
    fraud_rate: float,
    seed: int = 0,
    start: datetime | None = None,
    days: int = 30,
    with_pattern: bool = False,
    block_rows: int = BLOCK_ROWS,
) -> Iterator[pa.Table]:
    """Blocks of transactions (each sorted by time) for disjoint groups of accounts."""
    if rows < 1 or accounts < 1 or days < 1:
        raise ContractViolation(
            f"rows, accounts and days must be >= 1 (got {rows}, {accounts}, {days})"
        )
    if not 0.0 <= fraud_rate <= 0.5:
        raise ContractViolation(f"fraud rate must be between 0 and 0.5, got {fraud_rate}")
    begin = start or default_start(days)
    if begin.tzinfo is None:
        raise ContractViolation(f"start must carry a time zone (UTC), got {begin.isoformat()}")
    start_ms = int(begin.timestamp() * 1000)
    merchants = merchant_pool()
    blocks = max(1, -(-rows // block_rows))
    account_edges = np.linspace(0, accounts, blocks + 1).round().astype(np.int64)
    row_edges = np.linspace(0, rows, blocks + 1).round().astype(np.int64)
    fraud_edges = np.round(row_edges * fraud_rate).astype(np.int64)
    for block in range(blocks):
        rng = np.random.default_rng([seed, block])
        block_accounts = int(account_edges[block + 1] - account_edges[block])
        n = int(row_edges[block + 1] - row_edges[block])
        n_fraud = int(fraud_edges[block + 1] - fraud_edges[block])
        if block_accounts == 0 or n == 0:
            continue
        genuine, people = genuine_spending(
            rng, merchants, n - n_fraud, block_accounts, start_ms, days
        )
        if n_fraud:
            genuine = concat(
                genuine, fraud_episodes(rng, merchants, n_fraud, people, start_ms, days)
            )
        yield _table(
            genuine, merchants, int(account_edges[block]), int(row_edges[block]), seed, with_pattern
        )


def generate_transactions(
    *,
    rows: int,
    accounts: int,
    fraud_rate: float,
    seed: int = 0,
    start: datetime | None = None,
    days: int = 30,
    with_pattern: bool = False,
) -> pa.Table:
    """All generated transactions as one Arrow table with the contract's types."""
    return pa.concat_tables(
        iter_transactions(
            rows=rows,
            accounts=accounts,
            fraud_rate=fraud_rate,
            seed=seed,
            start=start,
            days=days,
            with_pattern=with_pattern,
        )
    )


def to_csv_table(table: pa.Table) -> pa.Table:
    """The table as the CSV carries it: ISO 8601 UTC timestamps (``2026-01-05T12:34:56.789Z``)."""
    index = table.schema.get_field_index("timestamp")
    text = pc.strftime(table.column(index), format="%Y-%m-%dT%H:%M:%SZ")
    return table.set_column(index, "timestamp", text)


def write_transactions_csv(
    path: Path,
    *,
    rows: int,
    accounts: int,
    fraud_rate: float,
    seed: int = 0,
    start: datetime | None = None,
    days: int = 30,
) -> GenerationSummary:
    """Write a generated CSV file (header = the contract's field names) and say what it holds."""
    begin = start or default_start(days)
    path.parent.mkdir(parents=True, exist_ok=True)
    fraud_rows = 0
    blocks = iter_transactions(
        rows=rows, accounts=accounts, fraud_rate=fraud_rate, seed=seed, start=begin, days=days
    )
    with pacsv.CSVWriter(
        path, TRANSACTION_SCHEMA.set(3, pa.field("timestamp", pa.string()))
    ) as writer:
        for block in blocks:
            fraud_rows += int(pc.sum(block.column("is_fraud")).as_py() or 0)
            writer.write_table(to_csv_table(block))
    return GenerationSummary(
        path=path,
        rows=rows,
        fraud_rows=fraud_rows,
        accounts=accounts,
        start=begin,
        end=begin + timedelta(days=days),
    )
