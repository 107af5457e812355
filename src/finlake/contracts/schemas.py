"""The Avro contract files (``avro/*.avsc``): the source of truth for every Kafka payload."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import fastavro

from finlake.errors import ContractViolation

CONTRACTS = ("market_tick", "transaction", "alert_event")


@cache
def schema_text(contract: str) -> str:
    """The raw JSON text of contract ``contract`` (e.g. ``market_tick``)."""
    if contract not in CONTRACTS:
        raise ContractViolation(f"unknown contract {contract!r}; known: {', '.join(CONTRACTS)}")
    return resources.files("finlake.contracts").joinpath("avro", f"{contract}.avsc").read_text()


@cache
def schema_json(contract: str) -> dict[str, Any]:
    """The contract as a JSON object."""
    parsed: dict[str, Any] = json.loads(schema_text(contract))
    return parsed


@cache
def parsed_schema(contract: str) -> Any:
    """The contract parsed by fastavro, ready for ``schemaless_writer``."""
    return fastavro.parse_schema(schema_json(contract))


def field_doc(contract: str, field: str) -> str:
    """The documentation of one field of a contract (models reuse it as their description)."""
    for entry in schema_json(contract)["fields"]:
        if entry["name"] == field:
            return str(entry["doc"])
    raise ContractViolation(f"contract {contract!r} has no field {field!r}")
