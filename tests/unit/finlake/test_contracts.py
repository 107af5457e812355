from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from pydantic import ValidationError

from finlake.contracts.compatibility import backward_problems, check_all_contracts, check_contract
from finlake.contracts.models import MODELS, AlertEvent, ContractModel, MarketTick, Transaction
from finlake.contracts.schemas import CONTRACTS, parsed_schema, schema_json, schema_text
from finlake.errors import IncompatibleSchemaError

T0 = datetime(2026, 11, 26, 14, 30, 0, 123456, tzinfo=UTC)

SAMPLES: list[ContractModel] = [
    MarketTick(
        symbol="AAPL",
        timestamp=T0,
        price=231.47,
        volume=1200,
        currency="USD",
        exchange="XNAS",
        source="simulate",
        produced_at=T0,
    ),
    MarketTick(symbol="MSFT", timestamp=T0, source="replay", produced_at=T0),
    Transaction(
        transaction_id="t-1",
        account_id="a-1",
        timestamp=T0,
        amount=Decimal("-12.30"),
        currency="EUR",
        merchant="Rewe",
        merchant_category="5411",
        country="DE",
        channel="pos",
        is_fraud=False,
    ),
    AlertEvent(
        event_id="e-1",
        rule="aapl-above-250",
        kind="price_cross",
        symbol="AAPL",
        severity="warning",
        window_start=T0,
        window_end=T0,
        fired_at=T0,
        value=250.5,
        threshold=250.0,
        message="AAPL crossed above 250.00",
        labels={"team": "equities"},
    ),
]


def _nullable(avro_type: Any) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


@pytest.mark.parametrize("contract", CONTRACTS)
def test_model_matches_its_avro_contract(contract: str) -> None:
    model = MODELS[contract]
    fields = {entry["name"]: entry for entry in schema_json(contract)["fields"]}
    assert list(model.model_fields) == list(fields)
    for name, entry in fields.items():
        info = model.model_fields[name]
        assert info.description == entry["doc"]
        assert info.is_required() == ("default" not in entry), name
        assert _nullable(entry["type"]) == (info.default is None and not info.is_required()), name


@pytest.mark.parametrize("contract", CONTRACTS)
def test_every_field_is_documented_with_required_or_optional(contract: str) -> None:
    for entry in schema_json(contract)["fields"]:
        assert entry["doc"].startswith(("Required.", "Optional")), entry["name"]


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_avro_round_trip_keeps_every_value(record: ContractModel) -> None:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed_schema(record.contract), record.to_avro())
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, parsed_schema(record.contract), None)
    assert type(record).model_validate(decoded) == record


def test_timestamps_are_utc_and_millisecond_precise() -> None:
    tick = MarketTick.model_validate(
        {
            "symbol": "A",
            "timestamp": "2026-11-26T15:30:00.123456+01:00",
            "source": "replay",
            "produced_at": T0,
        }
    )
    assert tick.timestamp == datetime(2026, 11, 26, 14, 30, 0, 123000, tzinfo=UTC)


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        MarketTick(symbol="A", timestamp=datetime(2026, 1, 1), source="replay", produced_at=T0)


def test_bad_currency_names_the_field() -> None:
    with pytest.raises(ValidationError, match="currency"):
        Transaction.model_validate({**SAMPLES[2].model_dump(), "currency": "euro"})


def test_current_contracts_are_backward_compatible_with_released_versions() -> None:
    check_all_contracts()


def _with_fields(contract: str, change: Any) -> dict[str, Any]:
    schema = copy.deepcopy(schema_json(contract))
    schema["fields"] = change(schema["fields"])
    return schema


def test_new_required_field_breaks_backward_compatibility() -> None:
    broken = _with_fields("market_tick", lambda f: [*f, {"name": "bid", "type": "double"}])
    assert backward_problems(schema_text("market_tick"), broken)
    with pytest.raises(IncompatibleSchemaError, match="bid"):
        check_contract("market_tick", json.dumps(broken))


def test_changed_field_type_breaks_backward_compatibility() -> None:
    def volume_as_string(fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [dict(f, type="string") if f["name"] == "volume" else f for f in fields]

    problems = backward_problems(
        schema_text("market_tick"), _with_fields("market_tick", volume_as_string)
    )
    assert any("type_mismatch" in problem for problem in problems)


def test_new_optional_field_with_default_stays_compatible() -> None:
    added = {"name": "bid", "type": ["null", "double"], "default": None, "doc": "Optional."}
    assert (
        backward_problems(
            schema_text("market_tick"), _with_fields("market_tick", lambda f: [*f, added])
        )
        == []
    )
