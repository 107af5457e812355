"""The writer schemas of ``market-data`` records: the wire format header that names one, and the
registry look-ups that tell whether it reads as a tick (each schema id asked once).

``MarketBatch`` extends ``WriterSchemas``, so the look-ups last as long as the stream; they live
here so that ``market_stream`` holds the batch's steps.
"""

from __future__ import annotations

import logging

from confluent_kafka.schema_registry import SchemaRegistryClient
from pyspark.sql import Column
from pyspark.sql import functions as F

from finlake.contracts.compatibility import backward_problems
from finlake.contracts.schemas import schema_text
from finlake.contracts.serde import registry_client, subject_schemas, value_subject
from finlake.transforms.bronze import MAGIC_BYTE
from finlake_spark.config import SparkAppSettings

log = logging.getLogger(__name__)
NOT_WIRE_FORMAT = "not in the Confluent wire format (magic byte 0 + 4-byte schema id)"


def wire_schema_id() -> Column:
    """The writer schema id of a record in the Confluent wire format, else null."""
    wire = (F.col("magic") == MAGIC_BYTE) & F.col("schema_id").isNotNull()
    return F.when(wire, F.col("schema_id"))


class WriterSchemas:
    """The writer schemas looked up so far, by id, and the ids registered for the topic."""

    def __init__(self, settings: SparkAppSettings) -> None:
        self.settings = settings
        self.reader_schema = schema_text("market_tick")
        self._registry: SchemaRegistryClient | None = None
        self._writers: dict[int, tuple[str | None, str | None]] = {}
        self._subject_ids: list[int] | None = None

    def writer_schema(self, schema_id: int) -> tuple[str | None, str | None]:
        """(schema, problem): the registered writer schema, or why it cannot be read as a tick."""
        if schema_id not in self._writers:
            if self._registry is None:
                self._registry = registry_client(self.settings.registry)
            try:
                text = self._registry.get_schema(schema_id).schema_str
            except Exception as error:  # the client raises its own error types per HTTP status
                self._writers[schema_id] = (
                    None,
                    f"schema id {schema_id} not in the registry: {error}",
                )
                return self._writers[schema_id]
            problems = backward_problems(text, self.reader_schema)
            problem = (
                f"schema id {schema_id} is not a MarketTick: {problems[0]}" if problems else None
            )
            self._writers[schema_id] = (text, problem)
        return self._writers[schema_id]

    def subject_ids(self) -> list[int]:
        """Ids of every version registered under the topic's value subject (asked once).

        Records usually carry one of these, so a batch decodes in the same pass that reads
        Kafka; any other id costs a second pass (``MarketBatch.__call__``). None known: an
        empty list.
        """
        if self._subject_ids is None:
            if self._registry is None:
                self._registry = registry_client(self.settings.registry)
            topic = self.settings.market.topic
            try:
                self._subject_ids = list(subject_schemas(self._registry, topic))
            except Exception as error:  # no such subject yet, or the registry is away
                log.warning(
                    "market stream: no schema ids of %s yet: %s", value_subject(topic), error
                )
                return []
        return list(self._subject_ids)

    def readable(self, schema_ids: list[int]) -> dict[int, str]:
        """The writer schemas among ``schema_ids`` that decode into a tick."""
        found = {i: self.writer_schema(i) for i in schema_ids}
        return {i: text for i, (text, problem) in found.items() if text and problem is None}
