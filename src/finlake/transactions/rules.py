"""The bronze -> silver rules of the transactions flow, as SQL every engine of the lake runs.

Bronze holds each record's text as uploaded. :func:`typed_columns` turns it into the silver types
(``TRY_CAST``: a value that does not parse becomes null) and :data:`TRANSACTION_EXPECTATIONS`
decide each row's fate, in the order a failing row is attributed. Both are plain SQL in the
subset Spark SQL and DuckDB share (but for how a regex is matched: :func:`transaction_expectations`
takes the dialect), so the Spark batch and the DuckDB peer of the benchmark apply exactly the same
rules. The uploaded text stays available to the rules as ``in_<column>``.

A timestamp and an amount are cast only when their text has the shape :data:`TIMESTAMP_SHAPE` /
:data:`AMOUNT_SHAPE` describe: the engines' casts disagree beyond it (Spark reads "2024-05" as the
first of the month and "10:15:00" as today, DuckDB reads hour 24 as the next day and "1_000" as a
thousand), and the batch must keep what the upload's preview counted as valid, and only that.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import pycountry

from finlake.quality import Expectation

TEXT_COLUMNS = (
    "transaction_id",
    "account_id",
    "card_id",
    "timestamp",
    "amount",
    "currency",
    "merchant",
    "merchant_category",
    "country",
    "channel",
    "entry_mode",
    "status",
    "is_fraud",
)
"""The contract's fields, in contract order: the CSV columns and bronze's text columns."""
REQUIRED_COLUMNS = TEXT_COLUMNS[:2] + TEXT_COLUMNS[3:10]
"""Columns a file must have; card_id, entry_mode, status and is_fraud may be absent."""

CHANNELS = ("pos", "ecommerce", "atm", "transfer", "contactless")
ENTRY_MODES = ("chip", "swipe", "contactless", "manual", "token")
STATUSES = ("approved", "declined")
CHANNEL_LIMITS = {
    "pos": 100_000,
    "ecommerce": 100_000,
    "atm": 20_000,
    "transfer": 1_000_000,
    "contactless": 5_000,
}
"""Largest absolute amount per channel, in units of a currency worth about a euro or more (see
:data:`CURRENCY_MAGNITUDES` for the others): sanity limits that catch misplaced decimals."""
CURRENCY_MAGNITUDES = {
    **dict.fromkeys(("CZK", "DOP", "EGP", "INR", "MAD", "MDL", "MKD", "MUR", "MXN", "MZN", "NOK",
                     "PHP", "RUB", "SEK", "THB", "TRY", "TWD", "UAH", "UYU", "ZAR"), 1),
    **dict.fromkeys(("AMD", "BDT", "CRC", "DZD", "ETB", "HUF", "ISK", "JMD", "JPY", "KES", "KZT",
                     "LKR", "NPR", "PKR", "RSD", "XAF", "XOF", "XPF"), 2),
    **dict.fromkeys(("AOA", "ARS", "CLP", "COP", "GNF", "IQD", "KHR", "KRW", "MGA", "MMK", "MNT",
                     "MWK", "NGN", "PYG", "RWF", "TZS", "UGX"), 3),
    **dict.fromkeys(("IDR", "IRR", "LAK", "UZS", "VND"), 4),
    "LBP": 5,
}  # fmt: skip
"""Currencies of which a euro buys ten or more units: k where a euro buys 10^k to 10^(k+1) of
them (rates of 2026, rounded down to the power of ten; an order of magnitude stays right for
years). Their channel limits are 10^k times :data:`CHANNEL_LIMITS`: a 6,000 yen contactless
payment is an everyday one, 6,000 euros a misplaced decimal."""
MAX_ID_LENGTH = 64
MAX_MERCHANT_LENGTH = 200
FUTURE_TOLERANCE_MINUTES = 5
"""How far after its receipt a transaction may be dated (clock skew of the sender)."""
EARLIEST_TIMESTAMP = "1970-01-01 00:00:00"
"""The earliest transaction time taken: a year typed as 0026 or 1026 is a mistake, and features
and the model read timestamps as nanoseconds since 1970 (pandas), which end before 1678."""
FORMULA_PREFIXES = ("=", "+", "-", "@")
"""First characters spreadsheets treat as a formula (OWASP CSV injection)."""
FREE_TEXT_COLUMNS = ("transaction_id", "account_id", "card_id", "merchant")
_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")


def _sql_list(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


@cache
def currency_codes() -> tuple[str, ...]:
    """ISO 4217 alphabetic codes (pycountry's copy of the standard)."""
    return tuple(sorted(currency.alpha_3 for currency in pycountry.currencies))


@cache
def country_codes() -> tuple[str, ...]:
    """ISO 3166-1 alpha-2 codes."""
    return tuple(sorted(country.alpha_2 for country in pycountry.countries))


TIMESTAMP_SHAPE = (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]"
    "(:[0-5][0-9]([.][0-9]{1,9})?)?(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?"
)
"""A full date and time: ``YYYY-MM-DD``, ``T`` or a space, ``hh:mm``, then optionally ``:ss`` and a
fraction, then optionally a zone (``Z`` or an offset up to 14 hours); no zone is UTC. Both engines
read every text of this shape alike (an impossible date such as 02-30 is null in both), once a
zone right after ``hh:mm`` has been given seconds (:func:`_with_seconds`): neither cast reads
``10:00Z`` or ``10:00+02:00`` (both null), both read ``10:00:00Z`` and ``10:00:00+02:00``."""
AMOUNT_SHAPE = "^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)"
"""ASCII digits with an optional sign and decimal point: no exponent, grouping or underscore."""
# regexp_extract is in both engines with the same meaning; the whole text must be the match
# (an anchored `$` would differ: Java's also matches before a final line break). No backslash in
# the patterns: Spark's string literals unescape them, DuckDB's do not.


WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + "\ufeff"
"""What is trimmed off each field: Python's whitespace (Unicode's: tab, no-break space, ideographic
space, ...) and the byte order mark. The engines' own ``trim`` differ (Spark's takes only the space,
DuckDB's no tab), so the rules name the characters."""


def trimmed(text: str) -> str:
    """SQL for ``text`` without :data:`WHITESPACE` at either end, in both engines.

    Trimmed only when an end is whitespace: Spark's trim of a character set allocates per call
    (a fifth of a second per million values), and almost no value needs it."""
    spaces = _sql_list(tuple(WHITESPACE))
    either_end = f"substr({text}, 1, 1) IN ({spaces}) OR substr({text}, -1) IN ({spaces})"
    return f"CASE WHEN {either_end} THEN TRIM(BOTH '{WHITESPACE}' FROM {text}) ELSE {text} END"


def _has_shape(text: str, shape: str) -> str:
    return f"regexp_extract({text}, '{shape}', 0) = {text}"


def _cast_if_shaped(text: str, shape: str, sql_type: str, cast_text: str | None = None) -> str:
    """``text`` cast to ``sql_type`` if it has ``shape`` (as ``cast_text``, if given), else null."""
    cast = cast_text or text
    return f"CASE WHEN {_has_shape(text, shape)} THEN TRY_CAST({cast} AS {sql_type}) END"


def _with_seconds(text: str) -> str:
    """SQL for a text of :data:`TIMESTAMP_SHAPE` with ``:00`` put between ``hh:mm`` and a zone
    right after it (``10:00Z`` -> ``10:00:00Z``), which both engines' casts read, as they do not
    the original. The shape fixes the zone's place: the 17th character, after ``YYYY-MM-DDThh:mm``.
    Any other text is left as it is, so every form read before is cast exactly as before."""
    zone_after_minutes = f"substr({text}, 17, 1) IN ('Z', '+', '-')"
    seconds_added = f"substr({text}, 1, 16) || ':00' || substr({text}, 17)"
    return f"CASE WHEN {zone_after_minutes} THEN {seconds_added} ELSE {text} END"


Dialect = Literal["duckdb", "spark"]
"""The SQL engines the rules are written for; they differ only in how a regex is matched."""

# A character class of the C0 controls but NUL (chr(0) upsets some engines' string literals):
# tab, LF, CR and the rest; DEL and the C1 controls. Java's and RE2's regex syntax agree on it.
_CONTROL_CLASS = "'[' || chr(1) || '-' || chr(31) || chr(127) || '-' || chr(159) || ']'"
_REGEX_MATCH = {"duckdb": "regexp_matches({text}, {pattern})", "spark": "({text} RLIKE {pattern})"}
"""A regex found anywhere in the text: the shared subset has no such predicate. (``translate``,
which both have, costs Spark 4 a hash lookup per character: most of the rules' time.)"""


def typed_columns(timestamp_type: str = "TIMESTAMP") -> dict[str, str]:
    """Silver column -> SQL over bronze's text (renamed ``in_<column>``) and lineage columns.

    ``timestamp_type`` is the engine's type for an instant: Spark's ``TIMESTAMP`` is one (session
    time zone UTC); DuckDB needs ``TIMESTAMPTZ`` to honour an offset in the text.
    """
    flag = f"lower({trimmed('in_is_fraud')})"
    timestamp = trimmed("in_timestamp")
    return {
        "transaction_id": trimmed("in_transaction_id"),
        "account_id": trimmed("in_account_id"),
        "card_id": f"nullif({trimmed('in_card_id')}, '')",
        "timestamp": _cast_if_shaped(
            timestamp, TIMESTAMP_SHAPE, timestamp_type, _with_seconds(timestamp)
        ),
        "amount": _cast_if_shaped(trimmed("in_amount"), AMOUNT_SHAPE, "DECIMAL(18,2)"),
        "currency": f"upper({trimmed('in_currency')})",
        "merchant": trimmed("in_merchant"),
        "merchant_category": trimmed("in_merchant_category"),
        "country": f"upper({trimmed('in_country')})",
        "channel": f"lower({trimmed('in_channel')})",
        "entry_mode": f"nullif(lower({trimmed('in_entry_mode')}), '')",
        "status": f"nullif(lower({trimmed('in_status')}), '')",
        "is_fraud": (
            f"CASE WHEN {flag} IN ({_sql_list(_TRUE)}) THEN true "
            f"WHEN {flag} IN ({_sql_list(_FALSE)}) THEN false END"
        ),
    }


def _not_formula(column: str) -> str:
    return f"coalesce(substr({column}, 1, 1) NOT IN ({_sql_list(FORMULA_PREFIXES)}), true)"


def _clean_text(column: str, dialect: Dialect) -> str:
    found = _REGEX_MATCH[dialect].format(text=column, pattern=_CONTROL_CLASS)
    # NUL, outside the class, by position (the file's first 64 KiB refuse it as binary, the
    # rest comes through the CSV reader).
    return f"coalesce(NOT {found} AND instr({column}, chr(0)) = 0, true)"


def _channel_limit() -> str:
    cases = " ".join(f"WHEN '{channel}' THEN {limit}" for channel, limit in CHANNEL_LIMITS.items())
    # One IN list per power of ten, a hash lookup each, not a string comparison per currency.
    by_power: dict[int, list[str]] = {}
    for currency, k in sorted(CURRENCY_MAGNITUDES.items()):
        by_power.setdefault(k, []).append(currency)
    scales = " ".join(
        f"WHEN currency IN ({_sql_list(codes)}) THEN {10**k}" for k, codes in by_power.items()
    )
    # BIGINT: a transfer limit times 10^4 is past what an INT holds (both engines fail on it).
    limit = f"CAST(CASE channel {cases} END AS BIGINT)"
    return f"abs(amount) <= {limit} * CASE {scales} ELSE 1 END"


@cache
def transaction_expectations(dialect: Dialect = "duckdb") -> tuple[Expectation, ...]:
    """The rules in ``dialect``'s SQL, in the order a failing row is attributed."""
    ids = " AND ".join(
        f"coalesce(length({c}), 0) <= {MAX_ID_LENGTH}" for c in FREE_TEXT_COLUMNS[:3]
    )
    return (
        Expectation(
            name="record_readable",
            condition="upload_issue IS NULL",
            description="the record has the header's field count and decodes in the encoding",
        ),
        Expectation(
            name="transaction_id_present",
            condition="length(transaction_id) > 0",
            description="transaction_id is not empty",
        ),
        Expectation(
            name="account_id_present",
            condition="length(account_id) > 0",
            description="account_id is not empty",
        ),
        Expectation(
            name="field_lengths",
            condition=f"{ids} AND coalesce(length(merchant), 0) <= {MAX_MERCHANT_LENGTH}",
            description=f"ids at most {MAX_ID_LENGTH} characters, merchant at most "
            f"{MAX_MERCHANT_LENGTH}",
        ),
        Expectation(
            name="formula_injection",
            condition=" AND ".join(_not_formula(c) for c in FREE_TEXT_COLUMNS),
            description="no text field starts with = + - @ (spreadsheet formula injection)",
        ),
        Expectation(
            name="control_characters",
            condition=" AND ".join(_clean_text(c, dialect) for c in FREE_TEXT_COLUMNS),
            description="no text field contains a control character (tab, line break, ...)",
        ),
        Expectation(
            name="timestamp_valid",
            condition="timestamp IS NOT NULL",
            description="timestamp is an ISO 8601 date and time, "
            "YYYY-MM-DDThh:mm[:ss[.f]][Z|±hh[:mm]] (T or a space; no zone: UTC)",
        ),
        Expectation(
            name="timestamp_not_before_1970",
            condition=f"timestamp >= TIMESTAMP '{EARLIEST_TIMESTAMP}'",
            description=f"timestamp not before {EARLIEST_TIMESTAMP} UTC (a mistyped year)",
        ),
        Expectation(
            name="timestamp_not_in_future",
            condition=f"timestamp <= received_at + INTERVAL {FUTURE_TOLERANCE_MINUTES} MINUTES",
            description=f"timestamp at most {FUTURE_TOLERANCE_MINUTES} minutes after the upload",
        ),
        Expectation(
            name="amount_valid",
            condition="amount IS NOT NULL",
            description="amount is a decimal number below 10^16 (digits, optional sign and point)",
        ),
        Expectation(
            name="amount_two_decimals",
            # The fraction up to its last non-zero digit: ".5" of 12.500, "" of 12. (no cast: a
            # DECIMAL of any fixed scale rounds 5.00000000001 to a value that passes).
            condition=f"length(regexp_extract({trimmed('in_amount')}, '[.][0-9]*[1-9]', 0)) <= 3",
            description="amount has at most two decimal places",
        ),
        Expectation(name="amount_non_zero", condition="amount <> 0", description="amount is not 0"),
        Expectation(
            name="currency_known",
            condition=f"currency IN ({_sql_list(currency_codes())})",
            description="currency is an ISO 4217 code",
        ),
        Expectation(
            name="merchant_present",
            condition="length(merchant) > 0",
            description="merchant is not empty",
        ),
        Expectation(
            name="merchant_category_valid",
            condition="length(merchant_category) = 4 "
            "AND length(translate(merchant_category, '0123456789', '')) = 0",
            description="merchant_category is a four-digit ISO 18245 code",
        ),
        Expectation(
            name="country_known",
            condition=f"country IN ({_sql_list(country_codes())})",
            description="country is an ISO 3166-1 alpha-2 code",
        ),
        Expectation(
            name="channel_known",
            condition=f"channel IN ({_sql_list(CHANNELS)})",
            description=f"channel is one of {', '.join(CHANNELS)}",
        ),
        Expectation(
            name="entry_mode_known",
            condition=f"entry_mode IS NULL OR entry_mode IN ({_sql_list(ENTRY_MODES)})",
            description=f"entry_mode is empty or one of {', '.join(ENTRY_MODES)}",
        ),
        Expectation(
            name="status_known",
            condition=f"status IS NULL OR status IN ({_sql_list(STATUSES)})",
            description=f"status is empty or one of {', '.join(STATUSES)}",
        ),
        Expectation(
            name="is_fraud_boolean",
            condition=f"is_fraud IS NOT NULL OR coalesce({trimmed('in_is_fraud')}, '') = ''",
            description="is_fraud is empty, true or false",
        ),
        Expectation(
            name="amount_within_channel_limit",
            condition=_channel_limit(),
            description="absolute amount within the channel's limit: "
            + ", ".join(f"{c} {limit}" for c, limit in CHANNEL_LIMITS.items())
            + " (x10^k for currencies of which a euro buys 10^k or more units, e.g. JPY x100)",
        ),
    )


TRANSACTION_EXPECTATIONS = transaction_expectations()
"""The rules (names and descriptions are the same in every dialect; the SQL is DuckDB's)."""
DUPLICATE_RULE = "duplicate_transaction_id"
DUPLICATE_DETAIL = "another row with this transaction_id was validated first"


def failed_rule_sql(expectations: tuple[Expectation, ...] = TRANSACTION_EXPECTATIONS) -> str:
    """SQL naming the first expectation a row fails (a null condition fails), else null."""
    cases = " ".join(
        f"WHEN NOT coalesce(({e.condition}), false) THEN '{e.name}'" for e in expectations
    )
    return f"CASE {cases} END"


def typed_select_sql(source: str, lineage: tuple[str, ...], timestamp_type: str) -> str:
    """Bronze rows of ``source`` as ``lineage`` columns, ``in_<text>`` and the typed columns."""
    text = ", ".join(f"{column} AS in_{column}" for column in TEXT_COLUMNS)
    inner = f"SELECT {', '.join(lineage)}, {text} FROM {source}"
    typed = ", ".join(f"{sql} AS {name}" for name, sql in typed_columns(timestamp_type).items())
    return f"SELECT *, {typed} FROM ({inner}) AS bronze"
