"""Avro in the Confluent wire format (magic byte + schema id), schemas kept in the registry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_before_delay,
    wait_random_exponential,
)

from finlake.config import RegistrySettings
from finlake.contracts.compatibility import backward_problems
from finlake.contracts.models import ContractModel
from finlake.contracts.schemas import schema_text
from finlake.errors import ContractViolation, RegistryError

ModelT = TypeVar("ModelT", bound=ContractModel)
T = TypeVar("T")
log = logging.getLogger(__name__)
COMPATIBILITY = "BACKWARD"
_UNANSWERED = (408, 429, 500, 502, 503, 504)  # statuses the registry client itself retries


def registry_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the registry did not answer (unreachable, timing out, busy, 5xx)
    rather than answered no: asking again later may succeed."""
    if isinstance(error, SchemaRegistryError):
        return error.http_status_code in _UNANSWERED
    # The client's network errors, after its own retries: httpx's, or httpx2's where installed
    # (the client prefers it), matched by name so either package is recognised.
    return any(
        kind.__name__ == "TransportError" and kind.__module__.split(".")[0] in ("httpx", "httpx2")
        for kind in type(error).__mro__
    )


def unanswered(error: BaseException) -> bool:
    """``registry_unavailable`` of ``error``, or of the client error a RegistryError wraps."""
    if isinstance(error, RegistryError) and error.__cause__ is not None:
        return registry_unavailable(error.__cause__)
    return registry_unavailable(error)


def asking_again(call: Callable[[], T], *, url: str, wait_s: float, what: str) -> T:
    """``call()``, asked again with full-jitter backoff (at most 30 s apart) while the registry
    at ``url`` does not answer (``unanswered``), until ``wait_s`` would pass; then RegistryError
    saying so, for a batch to stop on (its records stay in Kafka: none is rejected or
    dead-lettered because the registry was away). Any other error is raised at once, as it is.
    ``what`` completes "did not answer ..." in the warnings and the error."""

    def warn(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "registry at %s did not answer %s (%s); asking again for up to %.0f s",
            url, what, error, wait_s,
        )  # fmt: skip

    retrying = Retrying(
        retry=retry_if_exception(unanswered),
        wait=wait_random_exponential(multiplier=1, max=30),
        stop=stop_before_delay(wait_s),
        before_sleep=warn,
        reraise=True,
    )
    try:
        return retrying(call)
    except Exception as error:
        if not unanswered(error):
            raise
        cause = error.__cause__ if isinstance(error, RegistryError) else error
        raise RegistryError(
            f"schema registry at {url} did not answer {what} (asked for up to {wait_s:.0f} s): "
            f"{cause}; the batch stops, its records stay in Kafka"
        ) from error


def client_failure(error: Exception, *, url: str, what: str) -> Exception:
    """``error`` of the registry client doing ``what`` as a one-line RegistryError (what to do
    when nothing answers at ``url``); any other error as it is."""
    detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if registry_unavailable(error):
        return RegistryError(
            f"no schema registry answers at {url} ({what}: {detail}); start one with "
            "`finlake stack up` (or point FINLAKE_REGISTRY__URL at yours)"
        )
    if isinstance(error, SchemaRegistryError):
        return RegistryError(f"schema registry at {url} refused {what}: {detail}")
    return error


def schema_not_found(error: BaseException) -> bool:
    """Whether the registry itself answered that it has no such schema (a Confluent 404xx error
    code; a bare 404 from a proxy or a wrong URL path does not count)."""
    return (
        isinstance(error, SchemaRegistryError)
        and error.http_status_code == 404
        and 40400 <= error.error_code < 40500
    )


def registry_client(settings: RegistrySettings) -> SchemaRegistryClient:
    """A client of the Confluent-compatible registry API, with a timeout."""
    conf: dict[str, Any] = {"url": settings.ccompat_url, "timeout": 10}
    if settings.basic_auth_password is not None:
        conf["basic.auth.user.info"] = f"finlake:{settings.basic_auth_password.get_secret_value()}"
    return SchemaRegistryClient(conf)


def value_subject(topic: str) -> str:
    """The registry subject of a topic's values (TopicNameStrategy)."""
    return f"{topic}-value"


def register_contract(client: SchemaRegistryClient, topic: str, contract: str) -> int:
    """Register the contract under the topic's value subject with BACKWARD compatibility."""
    subject = value_subject(topic)
    client.set_compatibility(subject_name=subject, level=COMPATIBILITY)
    return client.register_schema(subject, Schema(schema_text(contract), "AVRO"))


def is_compatible(client: SchemaRegistryClient, topic: str, schema: str) -> bool:
    """Whether the registry would accept ``schema`` as the next version of the topic's values."""
    subject = value_subject(topic)
    if subject not in client.get_subjects():
        return True
    return client.test_compatibility(subject, Schema(schema, "AVRO"))


def subject_schemas(client: SchemaRegistryClient, topic: str) -> dict[int, str]:
    """Every version registered for the topic's values: schema text by schema id (the client's
    own errors when the subject does not exist yet or the registry is away)."""
    subject = value_subject(topic)
    versions = [client.get_version(subject, v) for v in client.get_versions(subject)]
    return {
        v.schema_id: v.schema.schema_str or ""
        for v in versions
        if v.schema_id is not None and v.schema is not None
    }


def readable_writer_schemas(
    client: SchemaRegistryClient, topic: str, contract: str
) -> tuple[dict[int, str], str | None]:
    """Every version registered for the topic's values that reads as ``contract``, by schema id,
    and why none could be listed (no such subject yet, registry away), if so."""
    try:
        texts = subject_schemas(client, topic)
    except Exception as error:  # the client raises its own error types per HTTP status
        return {}, f"no schema versions of {value_subject(topic)}: {error}"
    reader = schema_text(contract)
    readable = {
        i: text for i, text in texts.items() if text and not backward_problems(text, reader)
    }
    return readable, None


class ContractSerializer(Generic[ModelT]):
    """Serializes contract models for one topic; registers the contract (BACKWARD) up front."""

    def __init__(self, client: SchemaRegistryClient, topic: str, model: type[ModelT]) -> None:
        self.topic = topic
        self.schema_id = register_contract(client, topic, model.contract)
        self._context = SerializationContext(topic, MessageField.VALUE)
        self._serializer = AvroSerializer(
            client,
            schema_text(model.contract),
            to_dict=lambda record, _ctx: record.to_avro(),
            conf={"auto.register.schemas": True},
        )

    def __call__(self, record: ModelT) -> bytes:
        """The record in the Confluent wire format."""
        payload = self._serializer(record, self._context)
        if payload is None:
            raise ContractViolation(f"serializer returned nothing for {record!r}")
        return bytes(payload)


class ContractDeserializer(Generic[ModelT]):
    """Decodes any registered version of a contract into the current model (schema resolution)."""

    def __init__(self, client: SchemaRegistryClient, topic: str, model: type[ModelT]) -> None:
        self._model = model
        self._context = SerializationContext(topic, MessageField.VALUE)
        self._deserializer = AvroDeserializer(client, schema_text(model.contract))

    def __call__(self, payload: bytes | None) -> ModelT:
        """The model decoded from a wire-format payload; raises ContractViolation if it is not."""
        try:
            record = self._deserializer(payload, self._context)
        except Exception as error:  # the client raises several unrelated types for bad bytes
            if registry_unavailable(error):  # not the record's fault: it must not be dropped
                raise RegistryError(
                    f"schema registry did not answer decoding a {self._model.contract} record: "
                    f"{error}"
                ) from error
            raise ContractViolation(f"not a {self._model.contract} record: {error}") from error
        if record is None:
            raise ContractViolation(f"empty payload is not a {self._model.contract} record")
        return self._model.model_validate(record)
