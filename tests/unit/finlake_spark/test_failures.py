"""A failed query's trace reduced to the finlake error its batch raised (one line)."""

from __future__ import annotations

from finlake.errors import ContractViolation, RegistryError
from finlake_spark.failures import plain_failure

TRACE = """[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: Job aborted.
org.apache.spark.api.python.PythonException: Traceback (most recent call last):
  File "/work/spark_apps/finlake_spark/alerts/processor.py", line 97, in python_decoded
    raise RegistryError(
finlake.errors.RegistryError: {said}
\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException"""


def test_a_registry_that_did_not_answer_is_told_in_its_own_words() -> None:
    said = (
        "schema registry at http://127.0.0.1:8081/apis/ccompat/v7 did not answer decoding a "
        "tick (asked for up to 300 s): refused; the batch stops, its records stay in Kafka"
    )
    plain = plain_failure(Exception(TRACE.format(said=said)))
    assert isinstance(plain, RegistryError)
    assert str(plain) == said


def test_a_failed_expectation_is_told_in_its_own_words() -> None:
    said = "tick failed expectation price_positive: {'symbol': 'AAA', 'price': -1.0}"
    trace = TRACE.format(said=said).replace("RegistryError", "ContractViolation")
    plain = plain_failure(Exception(trace))
    assert isinstance(plain, ContractViolation)
    assert str(plain) == said


def test_any_other_failure_is_left_as_it_is() -> None:
    assert plain_failure(Exception(TRACE.format(said="registry refused BACKWARD"))) is None
    assert plain_failure(Exception("java.lang.OutOfMemoryError: Java heap space")) is None
