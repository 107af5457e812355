"""POST /v1/predict reads a transaction the way silver stores it, so it finds its features."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from finlake_query_api.api.routes.predict import TransactionIn

BODY = {
    "account_id": "\u00a0acc00000042 ",
    "timestamp": "2026-11-26T12:00:00Z",
    "amount": "4.99",
    "currency": " eur",
    "merchant": "  Pixel Games DE-00170\u3000",
    "country": " de",
    "channel": "ECOMMERCE",
    "entry_mode": " Manual ",
}


def test_values_are_normalised_as_the_batch_normalises_them() -> None:
    transaction = TransactionIn.model_validate(BODY)
    assert (transaction.account_id, transaction.merchant, transaction.country) == (
        "acc00000042", "Pixel Games DE-00170", "DE",
    )  # fmt: skip
    assert (transaction.channel, transaction.entry_mode) == ("ecommerce", "manual")
    assert transaction.currency == "EUR"  # the amount features are keyed by it


@pytest.mark.parametrize(
    ("field", "value"),
    [("country", "Germany"), ("merchant", "   "), ("channel", "fax"), ("currency", "euro"),
     ("timestamp", "0026-11-26T12:00:00Z"), ("timestamp", "1969-12-31T23:59:59Z")],
)  # fmt: skip
def test_what_silver_would_quarantine_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TransactionIn.model_validate(BODY | {field: value})


def test_a_transaction_without_its_currency_is_refused() -> None:
    # Amounts in different currencies are never added up: without one there is nothing to join.
    with pytest.raises(ValidationError, match="currency"):
        TransactionIn.model_validate({k: v for k, v in BODY.items() if k != "currency"})
