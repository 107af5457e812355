from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import fastavro

from finlake.contracts.models import MarketTick
from finlake.contracts.schemas import parsed_schema
from finlake_ingestion.encoding import MarketTickEncoder, epoch_millis

T0 = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)


def reference(tick: MarketTick, header: bytes) -> bytes:
    out = io.BytesIO()
    out.write(header)
    fastavro.schemaless_writer(out, parsed_schema("market_tick"), tick.to_avro())
    return out.getvalue()


def random_ticks(count: int) -> list[MarketTick]:
    rng = random.Random(3)
    ticks = []
    for n in range(count):
        ticks.append(
            MarketTick(
                symbol=rng.choice(["AAPL", "BRK-B", "^GSPC", "ÄÖÜ", "X" * 32]),
                timestamp=T0 + timedelta(milliseconds=rng.randint(-(10**12), 10**12)),
                price=rng.choice([None, 0.0, -3.5, rng.uniform(0, 1e6), 1e-9]),
                volume=rng.choice([None, 0, 1, -1, 2**62, rng.randint(0, 10**9)]),
                currency=rng.choice([None, "USD", ""]),
                exchange=rng.choice([None, "XNAS"]),
                source=rng.choice(["replay", "yahoo", "simulate"]),
                produced_at=T0 + timedelta(microseconds=n * 1999),
            )
        )
    return ticks


def test_encoder_writes_exactly_what_fastavro_writes() -> None:
    encode = MarketTickEncoder(schema_id=42)
    for tick in random_ticks(3000):
        assert encode(tick) == reference(tick, b"\x00\x00\x00\x00\x2a")


def test_encoded_ticks_decode_to_the_same_model() -> None:
    encode = MarketTickEncoder(schema_id=7)
    for tick in random_ticks(200):
        body = io.BytesIO(encode(tick)[5:])
        decoded = fastavro.schemaless_reader(body, parsed_schema("market_tick"))
        assert MarketTick.model_validate(decoded) == tick


def test_epoch_millis_before_and_after_1970() -> None:
    assert epoch_millis(datetime(1970, 1, 1, 0, 0, 0, 1500, tzinfo=UTC)) == 1
    assert epoch_millis(datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)) == -1
