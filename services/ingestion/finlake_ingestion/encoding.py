"""``MarketTick`` in the Confluent wire format: magic byte + schema id + fastavro's Avro body."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import fastavro

from finlake.contracts.models import MarketTick
from finlake.contracts.schemas import parsed_schema

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAGIC_BYTE = b"\x00"


def epoch_millis(moment: datetime) -> int:
    """Milliseconds since the epoch, as Avro's timestamp-millis stores them."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


class MarketTickEncoder:
    """Encodes ticks with a schema id registered once (no registry call per record)."""

    def __init__(self, schema_id: int) -> None:
        self.header = MAGIC_BYTE + schema_id.to_bytes(4, "big")
        self._schema = parsed_schema("market_tick")

    def __call__(self, tick: MarketTick) -> bytes:
        """The tick in the Confluent wire format."""
        out = io.BytesIO()
        out.write(self.header)
        # A pydantic model keeps its field values in __dict__; MarketTick's are all plain values,
        # so that is the mapping to_avro() would copy (a microsecond per record at 100k+/s).
        fastavro.schemaless_writer(out, self._schema, tick.__dict__)
        return out.getvalue()
