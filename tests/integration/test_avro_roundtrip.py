"""Avro through the real broker and the real registry: round trips, evolution, bad bytes."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from confluent_kafka.schema_registry import Schema

from finlake.config import FinlakeSettings
from finlake.contracts.models import AlertEvent, MarketTick, Transaction
from finlake.contracts.schemas import schema_json, schema_text
from finlake.contracts.serde import (
    ContractDeserializer,
    is_compatible,
    register_contract,
    registry_client,
    registry_unavailable,
    schema_not_found,
    value_subject,
)
from finlake.contracts.topics import ALERTS, MARKET_DATA, declared_topics
from finlake.errors import ContractViolation, RegistryError
from finlake.kafka_io import publish, read_back
from finlake.simulate import random_walk_ticks
from finlake.stack.kafka import create_topics
from tests.conftest import free_port

T0 = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)


def test_declared_topics_exist_with_configured_partitions(settings: FinlakeSettings) -> None:
    from confluent_kafka.admin import AdminClient

    topics = (
        AdminClient({"bootstrap.servers": settings.kafka.bootstrap}).list_topics(timeout=10).topics
    )
    for spec in declared_topics(settings.topics):
        assert len(topics[spec.name].partitions) == spec.partitions
    assert create_topics(settings.kafka.bootstrap, declared_topics(settings.topics)) == []


def test_ticks_round_trip_through_kafka_and_registry(settings: FinlakeSettings) -> None:
    ticks = list(random_walk_ticks(["AAPL", "MSFT", "NVDA"], count=50, seed=1, start=T0))
    result = publish(settings, MARKET_DATA, ticks, key_field="symbol")
    assert (result.delivered, result.failed) == (150, 0)
    back = read_back(settings, MARKET_DATA, MarketTick, result.offsets)
    assert sorted(back, key=lambda t: (t.symbol, t.timestamp)) == sorted(
        ticks, key=lambda t: (t.symbol, t.timestamp)
    )
    client = registry_client(settings.registry)
    latest = client.get_latest_version(value_subject(MARKET_DATA))
    assert json.loads(latest.schema.schema_str)["name"] == "MarketTick"
    assert client.get_compatibility(value_subject(MARKET_DATA)) == "BACKWARD"


def test_alerts_and_transactions_round_trip(settings: FinlakeSettings) -> None:
    event = AlertEvent(
        event_id="e-1",
        rule="r",
        kind="gap",
        symbol="AAPL",
        severity="critical",
        window_start=T0,
        window_end=T0 + timedelta(minutes=1),
        fired_at=T0,
        value=-3.2,
        threshold=-3.0,
        message="gap down",
        labels={"desk": "eq"},
    )
    result = publish(settings, ALERTS, [event], key_field="event_id")
    assert read_back(settings, ALERTS, AlertEvent, result.offsets) == [event]

    payment = Transaction(
        transaction_id="t-9",
        account_id="a",
        timestamp=T0,
        amount=Decimal("9.99"),
        currency="USD",
        merchant="m",
        merchant_category="5999",
        country="US",
        channel="ecommerce",
    )
    result = publish(settings, "alerts.dlq", [payment], key_field="transaction_id")
    assert read_back(settings, "alerts.dlq", Transaction, result.offsets) == [payment]


def test_older_writer_version_is_read_by_the_current_contract(settings: FinlakeSettings) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    topic = "evolution-test"
    create_topics(
        settings.kafka.bootstrap,
        [dataclasses.replace(declared_topics(settings.topics)[0], name=topic)],
    )
    client = registry_client(settings.registry)
    old = copy.deepcopy(schema_json("market_tick"))
    old["fields"] = [f for f in old["fields"] if f["name"] not in ("currency", "exchange")]
    client.set_compatibility(value_subject(topic), "BACKWARD")
    serialize = AvroSerializer(client, json.dumps(old))
    payload = serialize(
        {
            "symbol": "IBM",
            "timestamp": T0,
            "price": 1.5,
            "volume": 3,
            "source": "replay",
            "produced_at": T0,
        },
        SerializationContext(topic, MessageField.VALUE),
    )
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap})
    producer.produce(topic, payload, b"IBM")
    producer.flush(10)
    assert register_contract(client, topic, "market_tick") > 0  # the current contract is accepted
    decoded = ContractDeserializer(client, topic, MarketTick)(payload)
    assert (decoded.symbol, decoded.currency, decoded.exchange) == ("IBM", None, None)


def test_registry_rejects_a_breaking_change(settings: FinlakeSettings) -> None:
    client = registry_client(settings.registry)
    topic = "compat-test"
    register_contract(client, topic, "market_tick")
    broken = copy.deepcopy(schema_json("market_tick"))
    broken["fields"].append({"name": "bid", "type": "double"})
    assert not is_compatible(client, topic, json.dumps(broken))
    assert is_compatible(client, topic, schema_text("market_tick"))
    with pytest.raises(Exception, match=r"(?i)incompatible|409"):
        client.register_schema(value_subject(topic), Schema(json.dumps(broken), "AVRO"))


def test_undecodable_bytes_are_a_contract_violation(settings: FinlakeSettings) -> None:
    decode = ContractDeserializer(registry_client(settings.registry), MARKET_DATA, MarketTick)
    with pytest.raises(ContractViolation, match="not a market_tick record"):
        decode(b"\x00\x00\x00\x7f\xffgarbage")
    with pytest.raises(ContractViolation, match="not a market_tick record"):
        decode(b"plain text")


def test_the_registry_s_answer_for_an_unknown_id_is_told_from_no_answer(
    settings: FinlakeSettings,
) -> None:
    # A record of a schema the registry says it lacks cannot be decoded (a dead letter); one the
    # registry did not answer for can, later: it must never be dropped as undecodable.
    with pytest.raises(Exception) as answered:  # noqa: PT011 (whatever the client raises)
        registry_client(settings.registry).get_schema(32767)
    assert schema_not_found(answered.value), answered.value
    assert not registry_unavailable(answered.value)
    away = settings.registry.model_copy(update={"port": free_port()})
    with pytest.raises(Exception) as unanswered:  # noqa: PT011
        registry_client(away).get_schema(32767)
    assert registry_unavailable(unanswered.value), unanswered.value
    assert not schema_not_found(unanswered.value)
    decode = ContractDeserializer(registry_client(away), MARKET_DATA, MarketTick)
    with pytest.raises(RegistryError, match="schema registry did not answer decoding"):
        decode(b"\x00\x00\x00\x7f\xffgarbage")
