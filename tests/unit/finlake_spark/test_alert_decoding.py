"""Ticks the JVM could not decode, decoded in Python: a registry that does not answer is no
reason to reject one (the batch fails and Kafka keeps it; a rejected tick is never evaluated).
Bytes the registry answered for that are no tick: tests/integration/test_avro_roundtrip.py."""

from __future__ import annotations

import pytest
from pyspark.sql import Row

from finlake.config import RegistrySettings
from finlake.errors import RegistryError
from finlake_spark.alerts.processor import python_decoded
from tests.conftest import free_port


def test_a_tick_whose_schema_the_registry_did_not_answer_for_fails_its_batch() -> None:
    away = RegistrySettings(port=free_port())  # nothing listens: connection refused
    row = Row(raw=b"\x00\x00\x00\x00\x07wire-format-tick")
    with pytest.raises(RegistryError) as stopped:
        python_decoded(row, away, "market-data", wait_s=2, max_ahead_s=300)
    said = str(stopped.value)
    assert said.startswith(f"schema registry at {away.ccompat_url} did not answer decoding a tick")
    assert said.endswith("the batch stops, its records stay in Kafka")
