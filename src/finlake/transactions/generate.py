"""Seeded, vectorised generator of realistic card transactions with labelled fraud patterns.

Every account has a home country, a spending level, one or two cards and a handful of favourite
merchants; some travel abroad for a few days (legitimate foreign spend). Fraud comes in episodes on
victim accounts, each labelled ``is_fraud``:

- ``card_testing``: a burst of 6-20 tiny e-commerce payments seconds apart, mostly declined;
- ``foreign_spend``: a few card-present payments or withdrawals in a country the account never uses;
- ``amount_spike``: one or two purchases many times the account's usual amount;
- ``new_merchant_spree``: several purchases within an hour or two at merchants never used before.

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
FRAUD_PATTERNS = ("card_testing", "foreign_spend", "amount_spike", "new_merchant_spree")
BLOCK_ROWS = 1_000_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 24 * MS_PER_HOUR
FAVOURITES = 12
# When people pay: quiet nights, a lunch bump, busy evenings.
_HOURS = np.array(
    [0.4, 0.2, 0.1, 0.1, 0.1, 0.3, 0.9, 1.8, 2.6, 3.0, 3.4, 3.9,
     4.6, 4.2, 3.6, 3.6, 4.0, 4.6, 5.0, 4.6, 3.8, 2.8, 1.7, 0.9]
)  # fmt: skip
HOUR_P = _HOURS / _HOURS.sum()
_ZIPF = 1.0 / np.arange(1, FAVOURITES + 1)
FAVOURITE_P = _ZIPF / _ZIPF.sum()
# Per pattern: probability, episode sizes [low, high], mean gap between its payments (ms).
_PATTERN_P = np.array([0.30, 0.25, 0.20, 0.25])
_PATTERN_SIZES = np.array([[6, 20], [2, 6], [1, 2], [4, 10]])
_PATTERN_GAP_MS = np.array([40_000.0, 25 * 60_000.0, 10 * 60_000.0, 15 * 60_000.0])
_ID_MULTIPLIER = 25_214_903_917  # odd and not a multiple of 5: a bijection modulo 10**15
_ID_SPACE = 10**15


@dataclass(frozen=True)
class GenerationSummary:
    """What one generated file holds."""

    path: Path
    rows: int
    fraud_rows: int
    accounts: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class _Merchants:
    """The merchant pool, the same for every block of a run."""

    names: pa.Array
    country: np.ndarray
    category: np.ndarray
    offset: np.ndarray  # [country, category] -> first merchant
    count: np.ndarray  # [country, category] -> how many

    def pick(
        self, rng: np.random.Generator, country: np.ndarray, category: np.ndarray
    ) -> np.ndarray:
        """A random merchant of each (country, category) pair."""
        size = self.count[country, category]
        chosen: np.ndarray = self.offset[country, category] + (rng.random(len(size)) * size).astype(
            np.int64
        )
        return chosen


def _merchants() -> _Merchants:
    names: list[str] = []
    country: list[int] = []
    category: list[int] = []
    offset = np.zeros((len(COUNTRIES), len(CATEGORIES)), dtype=np.int64)
    count = np.zeros_like(offset)
    for c, place in enumerate(COUNTRIES):
        scale = 1.0 if place.home_weight > 0 else 0.4
        for k, kind in enumerate(CATEGORIES):
            offset[c, k], count[c, k] = len(names), max(3, round(200 * kind.weight * scale))
            for j in range(int(count[c, k])):
                names.append(f"{kind.names[j % len(kind.names)]} {place.code}-{len(names):05d}")
                country.append(c)
                category.append(k)
    return _Merchants(pa.array(names), np.array(country), np.array(category), offset, count)


_CATEGORY_P = np.array([kind.weight for kind in CATEGORIES]) / sum(k.weight for k in CATEGORIES)
_MEDIAN_EUR = np.array([kind.median_eur for kind in CATEGORIES])
_SIGMA = np.array([kind.sigma for kind in CATEGORIES])
_CHANNEL_CUM = np.cumsum(np.array([kind.channels for kind in CATEGORIES]), axis=1)
_CHANNEL_CUM[:, -1] = 1.0
_PER_EUR = np.array([place.per_eur for place in COUNTRIES])
_HOME = np.array([c for c, place in enumerate(COUNTRIES) if place.home_weight > 0])
_HOME_P = np.array([COUNTRIES[c].home_weight for c in _HOME]) / sum(
    COUNTRIES[c].home_weight for c in _HOME
)
_MCC = {kind.mcc: k for k, kind in enumerate(CATEGORIES)}
_CH = {name: i for i, name in enumerate(CHANNELS)}
_ATM_CATEGORY = _MCC["6011"]
# Which categories each pattern shops in (indices into CATEGORIES).
_PATTERN_CATEGORIES = (
    np.array([_MCC[m] for m in ("5815", "5816", "5999")]),
    np.array([_MCC[m] for m in ("5732", "5944", "5311", "6011")]),
    np.array([_MCC[m] for m in ("5732", "5944", "4511", "5999")]),
    np.array([_MCC[m] for m in ("5651", "5732", "5311", "5999", "5944", "5942")]),
)
_MAX_EUR = np.array([5_000.0, 250.0, 5_000.0, 1_000.0, 10_000.0])  # per CHANNELS entry
_ENTRY_MODES = pa.array(["chip", "swipe", "contactless", "manual", "token"])
_STATUSES = pa.array(["approved", "declined"])


def _foreign(rng: np.random.Generator, home: np.ndarray) -> np.ndarray:
    """A random country other than ``home``, for each entry."""
    other = rng.integers(0, len(COUNTRIES) - 1, len(home))
    return other + (other >= home)


@dataclass
class _Rows:
    account: np.ndarray
    ts: np.ndarray
    merchant: np.ndarray
    channel: np.ndarray
    amount_eur: np.ndarray
    entry: np.ndarray  # index into _ENTRY_MODES, -1 for none
    declined: np.ndarray
    card: np.ndarray
    pattern: np.ndarray  # -1 genuine, else index into FRAUD_PATTERNS


def _entry_modes(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    u = rng.random(len(channel))
    pos = np.where(u < 0.75, 0, np.where(u < 0.85, 1, 2))
    online = np.where(u < 0.6, 4, 3)
    return np.select(
        [channel == _CH["pos"], channel == _CH["contactless"], channel == _CH["ecommerce"],
         channel == _CH["atm"]],
        [pos, 2, online, 0],
        -1,
    )  # fmt: skip


def _channels(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    u = rng.random(len(category))
    channel: np.ndarray = (u[:, None] > _CHANNEL_CUM[category]).sum(axis=1)
    return channel


@dataclass(frozen=True)
class _Accounts:
    home: np.ndarray
    level: np.ndarray
    cards: np.ndarray
    favourites: np.ndarray


def _genuine(
    rng: np.random.Generator, merchants: _Merchants, n: int, accounts: int, start_ms: int, days: int
) -> tuple[_Rows, _Accounts]:
    home = _HOME[rng.choice(len(_HOME), size=accounts, p=_HOME_P)]
    activity = rng.lognormal(0.0, 0.7, accounts)
    level = rng.lognormal(0.0, 0.35, accounts)
    cards = 1 + (rng.random(accounts) < 0.3)
    favourite_categories = rng.choice(len(CATEGORIES), size=(accounts, FAVOURITES), p=_CATEGORY_P)
    favourites = merchants.pick(
        rng, np.repeat(home, FAVOURITES), favourite_categories.ravel()
    ).reshape(accounts, FAVOURITES)
    span = days * MS_PER_DAY
    has_trip = rng.random(accounts) < 0.12
    trip_start = start_ms + (rng.random(accounts) * max(span - 10 * MS_PER_DAY, 1)).astype(np.int64)
    trip_end = trip_start + rng.integers(2, 9, accounts) * MS_PER_DAY
    trip_country = _foreign(rng, home)

    account = np.repeat(np.arange(accounts), rng.multinomial(n, activity / activity.sum()))
    ts = (
        start_ms
        + rng.integers(0, days, n) * MS_PER_DAY
        + rng.choice(24, size=n, p=HOUR_P) * MS_PER_HOUR
        + rng.integers(0, MS_PER_HOUR, n)
    )
    favourite = rng.random(n) < 0.85
    merchant = np.where(
        favourite,
        favourites[account, rng.choice(FAVOURITES, size=n, p=FAVOURITE_P)],
        merchants.pick(rng, home[account], rng.choice(len(CATEGORIES), size=n, p=_CATEGORY_P)),
    )
    abroad = (
        has_trip[account]
        & (ts >= trip_start[account])
        & (ts < trip_end[account])
        & (rng.random(n) < 0.9)
    )
    if abroad.any():
        where = np.flatnonzero(abroad)
        merchant[where] = merchants.pick(
            rng,
            trip_country[account[where]],
            rng.choice(len(CATEGORIES), size=len(where), p=_CATEGORY_P),
        )
    category = merchants.category[merchant]
    channel = _channels(rng, category)
    amount = np.exp(
        np.log(_MEDIAN_EUR[category] * level[account]) + _SIGMA[category] * rng.standard_normal(n)
    )
    refund = (rng.random(n) < 0.004) & np.isin(channel, [_CH["pos"], _CH["ecommerce"]])
    amount = np.where(refund, -amount, amount)
    rows = _Rows(
        account=account,
        ts=ts,
        merchant=merchant,
        channel=channel,
        amount_eur=amount,
        entry=_entry_modes(rng, channel),
        declined=rng.random(n) < 0.015,
        card=rng.integers(0, cards[account]),
        pattern=np.full(n, -1),
    )
    return rows, _Accounts(home, level, cards, favourites)


def _fraud(
    rng: np.random.Generator,
    merchants: _Merchants,
    n: int,
    people: _Accounts,
    start_ms: int,
    days: int,
) -> _Rows:
    kinds = np.empty(0, dtype=np.int64)
    sizes = np.empty(0, dtype=np.int64)
    while sizes.sum() < n:
        more = max(8, n // 4)
        new_kinds = rng.choice(len(FRAUD_PATTERNS), size=more, p=_PATTERN_P)
        low, high = _PATTERN_SIZES[new_kinds, 0], _PATTERN_SIZES[new_kinds, 1]
        kinds = np.concatenate([kinds, new_kinds])
        sizes = np.concatenate([sizes, rng.integers(low, high + 1)])
    episodes = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    kinds, sizes = kinds[:episodes], sizes[:episodes].copy()
    sizes[-1] -= sizes.sum() - n
    span = days * MS_PER_DAY
    victim = rng.integers(0, len(people.home), episodes)
    # Leave victims some genuine history first, so the change is visible.
    begin = start_ms + (span * (0.2 + 0.75 * rng.random(episodes))).astype(np.int64)
    episode = np.repeat(np.arange(episodes), sizes)
    kind = kinds[episode]
    account = victim[episode]
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)
    waited = np.cumsum(rng.exponential(_PATTERN_GAP_MS[kind]))
    elapsed = waited - waited[first]
    ts = np.minimum(begin[episode] + elapsed.astype(np.int64), start_ms + span - 1)

    home = people.home[account]
    abroad_test = rng.random(episodes)[episode] < 0.5
    country = np.where(
        (kind == 1) | ((kind == 0) & abroad_test), _foreign(rng, people.home[victim])[episode], home
    )
    category = np.empty(n, dtype=np.int64)
    for k, choices in enumerate(_PATTERN_CATEGORIES):
        rows = kind == k
        category[rows] = rng.choice(choices, size=int(rows.sum()))
    merchant = merchants.pick(rng, country, category)
    # A card-testing bot hammers one merchant.
    tester = kind == 0
    merchant[tester] = merchant[first[tester]]
    category[tester] = category[first[tester]]
    typical = _MEDIAN_EUR[category] * people.level[account]
    amount = np.select(
        [kind == 0, kind == 1, kind == 2],
        [
            rng.uniform(0.5, 4.99, n) / _PER_EUR[country],
            typical * rng.uniform(2.0, 6.0, n),
            60.0 * people.level[account] * rng.uniform(8.0, 25.0, n),
        ],
        typical * rng.uniform(1.5, 4.0, n),
    )
    channel = np.select(
        [category == _ATM_CATEGORY, (kind == 0) | (kind == 2), kind == 1],
        [_CH["atm"], _CH["ecommerce"], _CH["pos"]],
        _channels(rng, category),
    )
    entry = _entry_modes(rng, channel)
    skimmed = (kind == 1) & (rng.random(n) < 0.6)
    entry = np.where(skimmed, 1, np.where(tester, 3, entry))
    return _Rows(
        account=account,
        ts=ts,
        merchant=merchant,
        channel=channel,
        amount_eur=amount,
        entry=entry,
        declined=rng.random(n) < np.where(tester, 0.65, 0.1),
        card=np.zeros(n, dtype=np.int64),
        pattern=kind,
    )


def _concat(a: _Rows, b: _Rows) -> _Rows:
    return _Rows(**{f: np.concatenate([getattr(a, f), getattr(b, f)]) for f in a.__dict__})


def _money(amount: np.ndarray) -> pa.Array:
    """Amounts as decimal(18,2), built from integer cents without a per-row Python loop."""
    cents = np.round(amount * 100).astype(np.int64)
    words = np.column_stack([cents, np.where(cents < 0, -1, 0)]).astype(np.int64).ravel()
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words)])


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _table(
    rows: _Rows, merchants: _Merchants, first_account: int, first_row: int, seed: int, pattern: bool
) -> pa.Table:
    order = np.argsort(rows.ts, kind="stable")
    r = _Rows(**{f: getattr(rows, f)[order] for f in rows.__dict__})
    country = merchants.country[r.merchant]
    category = merchants.category[r.merchant]
    local = r.amount_eur * _PER_EUR[country]
    cap = _MAX_EUR[r.channel] * _PER_EUR[country]
    local = np.clip(local, -cap, cap)
    atm = r.channel == _CH["atm"]
    local[atm] = np.maximum(20.0, np.round(local[atm] / 20.0) * 20.0)
    local = np.where(np.abs(local) < 0.01, 0.01, local)
    offset = np.random.default_rng([seed, 7]).integers(0, _ID_SPACE)
    serial = (np.arange(len(order), dtype=np.int64) + first_row) * _ID_MULTIPLIER + offset
    no_card = r.channel == _CH["transfer"]
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
        "entry_mode": _ENTRY_MODES.take(pa.array(r.entry, mask=r.entry < 0)),
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
    merchants = _merchants()
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
        genuine, people = _genuine(rng, merchants, n - n_fraud, block_accounts, start_ms, days)
        if n_fraud:
            genuine = _concat(genuine, _fraud(rng, merchants, n_fraud, people, start_ms, days))
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
