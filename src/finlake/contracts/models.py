"""Pydantic models of the Avro contracts; field documentation comes from the ``.avsc`` files."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from finlake.contracts.schemas import field_doc


def _as_utc_millis(value: datetime) -> datetime:
    # The wire type is timestamp-millis: keep what survives a round trip, nothing finer.
    utc = value.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc_millis)]


class ContractModel(BaseModel):
    """Base of every payload model: frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    contract: ClassVar[str]

    def to_avro(self) -> dict[str, Any]:
        """The record as fastavro writes it (datetimes and Decimals kept as objects)."""
        return self.model_dump()


def _doc(contract: str, field: str) -> Any:
    return Field(description=field_doc(contract, field))


def _optional(contract: str, field: str) -> Any:
    return Field(default=None, description=field_doc(contract, field))


class MarketTick(ContractModel):
    """One trade or quote observation for one instrument (topic ``market-data``)."""

    contract: ClassVar[str] = "market_tick"
    symbol: Annotated[str, Field(min_length=1, max_length=32)] = _doc("market_tick", "symbol")
    timestamp: UtcDatetime = _doc("market_tick", "timestamp")
    price: float | None = _optional("market_tick", "price")
    volume: int | None = _optional("market_tick", "volume")
    currency: str | None = _optional("market_tick", "currency")
    exchange: str | None = _optional("market_tick", "exchange")
    source: str = _doc("market_tick", "source")
    produced_at: UtcDatetime = _doc("market_tick", "produced_at")


class Transaction(ContractModel):
    """One card or payment transaction (bronze ``transactions.raw``)."""

    contract: ClassVar[str] = "transaction"
    transaction_id: Annotated[str, Field(min_length=1)] = _doc("transaction", "transaction_id")
    account_id: Annotated[str, Field(min_length=1)] = _doc("transaction", "account_id")
    card_id: str | None = _optional("transaction", "card_id")
    timestamp: UtcDatetime = _doc("transaction", "timestamp")
    amount: Annotated[Decimal, Field(max_digits=18, decimal_places=2)] = _doc(
        "transaction", "amount"
    )
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = _doc("transaction", "currency")
    merchant: str = _doc("transaction", "merchant")
    merchant_category: Annotated[str, Field(pattern=r"^[0-9]{4}$")] = _doc(
        "transaction", "merchant_category"
    )
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = _doc("transaction", "country")
    channel: str = _doc("transaction", "channel")
    entry_mode: str | None = _optional("transaction", "entry_mode")
    status: str | None = _optional("transaction", "status")
    is_fraud: bool | None = _optional("transaction", "is_fraud")


class AlertEvent(ContractModel):
    """One firing of an alert rule for one symbol (topic ``alerts``)."""

    contract: ClassVar[str] = "alert_event"
    event_id: str = _doc("alert_event", "event_id")
    rule: str = _doc("alert_event", "rule")
    kind: str = _doc("alert_event", "kind")
    symbol: str = _doc("alert_event", "symbol")
    severity: str = _doc("alert_event", "severity")
    window_start: UtcDatetime = _doc("alert_event", "window_start")
    window_end: UtcDatetime = _doc("alert_event", "window_end")
    fired_at: UtcDatetime = _doc("alert_event", "fired_at")
    value: float = _doc("alert_event", "value")
    threshold: float = _doc("alert_event", "threshold")
    message: str = _doc("alert_event", "message")
    labels: dict[str, str] = Field(
        default_factory=dict, description=field_doc("alert_event", "labels")
    )


MODELS: dict[str, type[ContractModel]] = {
    model.contract: model for model in (MarketTick, Transaction, AlertEvent)
}
