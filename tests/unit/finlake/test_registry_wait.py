"""Waiting for a schema registry that does not answer: asked again while it is away, never
past the wait, and an answer (even a no) ends the wait at once. The real client against a real
registry and a closed port: tests/integration/test_avro_roundtrip.py."""

from __future__ import annotations

import logging

import httpx
import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from finlake.contracts.serde import asking_again, unanswered
from finlake.errors import RegistryError

URL = "http://127.0.0.1:9/apis/ccompat/v7"


class Answers:
    """A call that raises the given errors in turn, then returns its value; counts its calls."""

    def __init__(self, *errors: Exception, value: str = "schema") -> None:
        self.errors = list(errors)
        self.value = value
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


def away() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")


def test_a_registry_back_within_the_wait_answers_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    busy = SchemaRegistryError(503, 50301, "busy")
    wrapped = RegistryError("schema registry did not answer decoding a tick")
    wrapped.__cause__ = away()  # how ContractDeserializer reports it
    call = Answers(away(), busy, wrapped)
    with caplog.at_level(logging.WARNING):
        assert asking_again(call, url=URL, wait_s=60, what="for schema id 3") == "schema"
    assert call.calls == 4
    warned = [r.getMessage() for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(warned) == 3, warned
    assert f"registry at {URL} did not answer for schema id 3" in warned[0]


def test_a_registry_away_for_the_whole_wait_stops_the_batch_with_one_line() -> None:
    call = Answers(*(away() for _ in range(100)))
    with pytest.raises(RegistryError) as stopped:
        asking_again(call, url=URL, wait_s=1, what="decoding a tick")
    said = str(stopped.value)
    assert said.startswith(f"schema registry at {URL} did not answer decoding a tick ")
    assert "(asked for up to 1 s): [Errno 111] Connection refused" in said
    assert said.endswith("the batch stops, its records stay in Kafka")
    assert "\n" not in said
    assert 1 <= call.calls < 100


@pytest.mark.parametrize(
    "answer",
    [
        SchemaRegistryError(404, 40403, "Schema not found"),
        SchemaRegistryError(401, 40101, "Unauthorized"),
        ValueError("not an Avro schema"),
    ],
    ids=["not-found", "refused", "other"],
)
def test_an_answer_ends_the_wait_at_once_as_it_is(answer: Exception) -> None:
    call = Answers(answer)
    with pytest.raises(type(answer)) as raised:
        asking_again(call, url=URL, wait_s=60, what="for schema id 3")
    assert raised.value is answer
    assert call.calls == 1
    assert not unanswered(answer)
