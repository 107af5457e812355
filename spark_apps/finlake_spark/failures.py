"""What a failed streaming query says, in one line: the finlake error its batch raised.

A query that fails hands back a ``StreamingQueryException`` whose message holds the JVM's trace
and, inside it, the Python traceback of the task or foreachBatch that raised. Two failures are
the user's to act on and say all they need in their own message: a ``fail`` expectation (which
rule, which row) and a schema registry that did not answer (the records stay in Kafka).
"""

from __future__ import annotations

import re

from finlake.errors import ContractViolation, FinlakeError, RegistryError

_SAID = re.compile(
    r"\b(ContractViolation|RegistryError): ((?:tick failed expectation|schema registry at) [^\n]*)"
)
_KINDS: dict[str, type[FinlakeError]] = {
    "ContractViolation": ContractViolation,
    "RegistryError": RegistryError,
}


def plain_failure(error: BaseException) -> FinlakeError | None:
    """The expectation or registry error ``error`` carries, as its own one-line error, or None."""
    said = _SAID.search(str(error))
    if said is None:
        return None
    return _KINDS[said.group(1)](said.group(2))
