"""BACKWARD compatibility of contract changes, checked offline with Apache Avro's own checker."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from finlake.contracts.schemas import CONTRACTS, schema_text
from finlake.errors import IncompatibleSchemaError

# avro's checker has an untyped ``__init__``; this alias gives the constructor its real signature.
_new_checker: Callable[[], ReaderWriterCompatibilityChecker] = ReaderWriterCompatibilityChecker


def _parse(schema: str | dict[str, Any]) -> avro.schema.Schema:
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return avro.schema.parse(text)


def backward_problems(previous: str | dict[str, Any], current: str | dict[str, Any]) -> list[str]:
    """Why ``current`` (the reader) cannot read data written with ``previous``; empty if it can."""
    result = _new_checker().get_compatibility(reader=_parse(current), writer=_parse(previous))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted(kind.name for kind in result.incompatibilities))
    where = ", ".join(sorted(result.locations))
    return [f"{kinds} ({', '.join(sorted(result.messages))}) at {where}"]


def released_versions(contract: str) -> list[tuple[str, str]]:
    """(file name, schema text) of every released version under ``avro/history/<contract>/``."""
    folder = resources.files("finlake.contracts").joinpath("avro", "history", contract)
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".avsc")),
        key=lambda entry: int(entry.name.removeprefix("v").removesuffix(".avsc")),
    )
    return [(entry.name, entry.read_text()) for entry in files]


def check_contract(contract: str, current: str | None = None) -> None:
    """Raise if ``current`` (default: the contract file) breaks BACKWARD compatibility."""
    candidate = current if current is not None else schema_text(contract)
    for name, previous in released_versions(contract):
        problems = backward_problems(previous, candidate)
        if problems:
            raise IncompatibleSchemaError(
                f"contract {contract!r} cannot read data written with {name}: {'; '.join(problems)}"
            )


def check_all_contracts() -> None:
    """Check every contract against every released version."""
    for contract in CONTRACTS:
        check_contract(contract)
