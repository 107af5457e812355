"""``finlake contracts``: the Avro data contracts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from finlake.cli.output import console
from finlake.config import get_settings
from finlake.contracts.compatibility import check_contract
from finlake.contracts.schemas import CONTRACTS, schema_json
from finlake.contracts.serde import (
    client_failure,
    register_contract,
    registry_client,
    value_subject,
)
from finlake.contracts.topics import declared_topics

app = typer.Typer(help="Show, check and register the Avro data contracts.")


@app.command("list")
def list_contracts() -> None:
    """List the contracts and their fields."""
    for contract in CONTRACTS:
        schema = schema_json(contract)
        table = Table(
            "field", "type", "doc", title=f"{contract} ({schema['namespace']}.{schema['name']})"
        )
        for entry in schema["fields"]:
            table.add_row(entry["name"], str(entry["type"]), entry["doc"])
        console.print(table)


@app.command()
def check(
    contract: Annotated[
        list[str] | None, typer.Argument(help="Contracts to check; all by default.")
    ] = None,
) -> None:
    """Fail when a contract breaks BACKWARD compatibility with a released version."""
    for name in contract or list(CONTRACTS):
        check_contract(name)
        console.print(f"{name}: BACKWARD compatible with every released version")


@app.command()
def register() -> None:
    """Register every topic's contract in the schema registry (compatibility BACKWARD)."""
    settings = get_settings()
    client = registry_client(settings.registry)
    for topic in declared_topics(settings.topics):
        if topic.contract is not None:
            try:
                schema_id = register_contract(client, topic.name, topic.contract)
            except Exception as error:  # httpx's errors, and the client's own per HTTP status
                raise client_failure(
                    error,
                    url=settings.registry.ccompat_url,
                    what=f"registering {value_subject(topic.name)}",
                ) from error
            console.print(
                f"{topic.name}-value: {topic.contract} registered as schema id {schema_id}"
            )


@app.command()
def topics(
    create: Annotated[
        bool, typer.Option(help="Create the missing ones on FINLAKE_KAFKA__BOOTSTRAP_SERVERS.")
    ] = False,
    replication_factor: Annotated[
        int,
        typer.Option(help="Replicas of each created topic; -1: the brokers' default.", min=-1),
    ] = -1,
) -> None:
    """List the Kafka topics finlake uses (partitions, retention, key, contract); create them."""
    from finlake.stack.kafka import create_topics

    settings = get_settings()
    declared = declared_topics(settings.topics)
    table = Table("topic", "partitions", "retention", "key", "contract")
    for topic in declared:
        hours = topic.retention_ms / 3_600_000
        table.add_row(
            topic.name, str(topic.partitions), f"{hours:g} h", topic.key, topic.contract or "-"
        )
    console.print(table)
    if not create:
        return
    created = create_topics(settings.kafka.bootstrap, declared, replication_factor)
    if created:
        console.print(f"created on {settings.kafka.bootstrap}: {', '.join(created)}")
    else:
        console.print(f"every topic exists on {settings.kafka.bootstrap}")
