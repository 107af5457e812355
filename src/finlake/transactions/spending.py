"""Who spends what, where: the merchant pool, genuine spending and the fraud patterns.

Every account has a home country, a spending level, one or two cards and a handful of favourite
merchants; some travel abroad for a few days (legitimate foreign spend). Fraud comes in episodes on
victim accounts, each labelled ``is_fraud``:

- ``card_testing``: a burst of 6-20 tiny e-commerce payments seconds apart, mostly declined;
- ``foreign_spend``: a few card-present payments or withdrawals in a country the account never uses;
- ``amount_spike``: one or two purchases many times the account's usual amount;
- ``new_merchant_spree``: several purchases within an hour or two at merchants never used before.

Rows come out as plain numpy arrays (``Rows``, amounts in EUR); ``finlake.transactions.generate``
turns them into Arrow tables with the contract's types.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from finlake.transactions.reference import CATEGORIES, CHANNELS, COUNTRIES

FRAUD_PATTERNS = ("card_testing", "foreign_spend", "amount_spike", "new_merchant_spree")
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


@dataclass(frozen=True)
class Merchants:
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


def merchant_pool() -> Merchants:
    """Merchants for every (country, category), fewer abroad, named after the category's kinds."""
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
    return Merchants(pa.array(names), np.array(country), np.array(category), offset, count)


_CATEGORY_P = np.array([kind.weight for kind in CATEGORIES]) / sum(k.weight for k in CATEGORIES)
_MEDIAN_EUR = np.array([kind.median_eur for kind in CATEGORIES])
_SIGMA = np.array([kind.sigma for kind in CATEGORIES])
_CHANNEL_CUM = np.cumsum(np.array([kind.channels for kind in CATEGORIES]), axis=1)
_CHANNEL_CUM[:, -1] = 1.0
PER_EUR = np.array([place.per_eur for place in COUNTRIES])
_HOME = np.array([c for c, place in enumerate(COUNTRIES) if place.home_weight > 0])
_HOME_P = np.array([COUNTRIES[c].home_weight for c in _HOME]) / sum(
    COUNTRIES[c].home_weight for c in _HOME
)
_MCC = {kind.mcc: k for k, kind in enumerate(CATEGORIES)}
CH = {name: i for i, name in enumerate(CHANNELS)}
_ATM_CATEGORY = _MCC["6011"]
# Which categories each pattern shops in (indices into CATEGORIES).
_PATTERN_CATEGORIES = (
    np.array([_MCC[m] for m in ("5815", "5816", "5999")]),
    np.array([_MCC[m] for m in ("5732", "5944", "5311", "6011")]),
    np.array([_MCC[m] for m in ("5732", "5944", "4511", "5999")]),
    np.array([_MCC[m] for m in ("5651", "5732", "5311", "5999", "5944", "5942")]),
)
ENTRY_MODES = pa.array(["chip", "swipe", "contactless", "manual", "token"])


def _foreign(rng: np.random.Generator, home: np.ndarray) -> np.ndarray:
    """A random country other than ``home``, for each entry."""
    other = rng.integers(0, len(COUNTRIES) - 1, len(home))
    return other + (other >= home)


@dataclass
class Rows:
    """Transactions as parallel numpy arrays, amounts in EUR, not yet sorted by time."""

    account: np.ndarray
    ts: np.ndarray
    merchant: np.ndarray
    channel: np.ndarray
    amount_eur: np.ndarray
    entry: np.ndarray  # index into ENTRY_MODES, -1 for none
    declined: np.ndarray
    card: np.ndarray
    pattern: np.ndarray  # -1 genuine, else index into FRAUD_PATTERNS


def _entry_modes(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    u = rng.random(len(channel))
    pos = np.where(u < 0.75, 0, np.where(u < 0.85, 1, 2))
    online = np.where(u < 0.6, 4, 3)
    return np.select(
        [channel == CH["pos"], channel == CH["contactless"], channel == CH["ecommerce"],
         channel == CH["atm"]],
        [pos, 2, online, 0],
        -1,
    )  # fmt: skip


def _channels(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    u = rng.random(len(category))
    channel: np.ndarray = (u[:, None] > _CHANNEL_CUM[category]).sum(axis=1)
    return channel


@dataclass(frozen=True)
class Accounts:
    """What genuine spending drew per account, which the fraud episodes reuse."""

    home: np.ndarray
    level: np.ndarray
    cards: np.ndarray
    favourites: np.ndarray


def genuine_spending(
    rng: np.random.Generator, merchants: Merchants, n: int, accounts: int, start_ms: int, days: int
) -> tuple[Rows, Accounts]:
    """``n`` genuine payments of ``accounts`` new accounts over ``days`` days, and the accounts."""
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
    refund = (rng.random(n) < 0.004) & np.isin(channel, [CH["pos"], CH["ecommerce"]])
    amount = np.where(refund, -amount, amount)
    rows = Rows(
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
    return rows, Accounts(home, level, cards, favourites)


def fraud_episodes(
    rng: np.random.Generator,
    merchants: Merchants,
    n: int,
    people: Accounts,
    start_ms: int,
    days: int,
) -> Rows:
    """``n`` fraudulent payments in episodes on victims among ``people``, labelled by pattern."""
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
            rng.uniform(0.5, 4.99, n) / PER_EUR[country],
            typical * rng.uniform(2.0, 6.0, n),
            60.0 * people.level[account] * rng.uniform(8.0, 25.0, n),
        ],
        typical * rng.uniform(1.5, 4.0, n),
    )
    channel = np.select(
        [category == _ATM_CATEGORY, (kind == 0) | (kind == 2), kind == 1],
        [CH["atm"], CH["ecommerce"], CH["pos"]],
        _channels(rng, category),
    )
    entry = _entry_modes(rng, channel)
    skimmed = (kind == 1) & (rng.random(n) < 0.6)
    entry = np.where(skimmed, 1, np.where(tester, 3, entry))
    return Rows(
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


def concat(a: Rows, b: Rows) -> Rows:
    """The rows of ``a`` followed by those of ``b``."""
    return Rows(**{f: np.concatenate([getattr(a, f), getattr(b, f)]) for f in a.__dict__})
