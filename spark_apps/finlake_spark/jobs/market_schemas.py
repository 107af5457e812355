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
from finlake.contracts.serde import (
    asking_again,
    registry_client,
    schema_not_found,
    subject_schemas,
    value_subject,
)
from finlake.errors import RegistryError
from finlake.transforms.bronze import MAGIC_BYTE
from finlake_spark.config import SparkAppSettings

log = logging.getLogger(__name__)
NOT_WIRE_FORMAT = "not in the Confluent wire format (magic byte 0 + 4-byte schema id)"


def wire_schema_id() -> Column:
    """The writer schema id of a record in the Confluent wire format, else null."""
    wire = (F.col("magic") == MAGIC_BYTE) & F.col("schema_id").isNotNull()
    return F.when(wire, F.col("schema_id"))


class SchemaNotFound(Exception):
    """The registry answered that it holds no schema of that id."""


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
                text = self._get_schema(self._registry, schema_id)
            except SchemaNotFound as error:
                # The registry answered: it has no such schema (a lost registry, a foreign
                # producer). Its records cannot be decoded; they go to the dead letter.
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

    def _get_schema(self, registry: SchemaRegistryClient, schema_id: int) -> str:
        """The schema text of ``schema_id``; while the registry cannot answer (down, timing out,
        5xx), asked again with backoff for ``registry_wait_s``, then RegistryError: the batch
        fails, its records stay in Kafka for the next start, none is dead-lettered for it."""
        url = self.settings.registry.ccompat_url
        wait_s = self.settings.market.registry_wait_s
        try:
            schema: str = asking_again(
                lambda: registry.get_schema(schema_id).schema_str,
                url=url, wait_s=wait_s, what=f"for schema id {schema_id}",
            )  # fmt: skip
        except RegistryError:
            raise
        except Exception as error:  # the client raises its own types per HTTP status
            if schema_not_found(error):
                raise SchemaNotFound(str(error)) from error
            raise RegistryError(
                f"schema registry at {url} refused the look-up for schema id {schema_id}: "
                f"{error}; the batch stops, its records stay in Kafka"
            ) from error
        return schema

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
