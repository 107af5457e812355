"""Session fixtures: the real local stack (Kafka + Apicurio) on free ports in a fresh home, and
the trino profile (that stack plus PostgreSQL, SeaweedFS and Trino 476) in another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from finlake.config import FinlakeSettings
from finlake.lake.connection import TRINO_PROFILE, open_catalog
from finlake.stack.manager import Stack
from finlake.stack.seaweedfs import PORT_FIELDS
from tests.conftest import free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


def stack_settings(home: Path) -> FinlakeSettings:
    """Settings for an isolated stack: its own home and free ports, the shared download cache."""
    return FinlakeSettings.model_validate(
        {
            "home": home,
            "kafka": {"port": free_port(), "controller_port": free_port()},
            "registry": {"port": free_port(), "management_port": free_port()},
        }
    )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running stack for the whole session; stopped at the end."""
    running = Stack(stack_settings(tmp_path_factory.mktemp("finlake-home")))
    try:
        running.up()
        yield running
    finally:
        running.down()


@pytest.fixture(scope="session")
def settings(stack: Stack) -> FinlakeSettings:
    """The settings of the session's stack."""
    return stack.settings


def trino_settings(home: Path) -> FinlakeSettings:
    """An isolated home on free ports, every service of the trino profile included."""
    base = stack_settings(home).model_dump()
    store = {field: free_port() for field in PORT_FIELDS}
    return FinlakeSettings.model_validate(
        {
            **base,
            "postgres": {"port": free_port()},
            "object_store": store,
            "trino": {"port": free_port()},
        }
    )


@pytest.fixture(scope="session")
def trino_profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`finlake stack up --with trino`, once for the session; modules empty its lake first."""
    home = tmp_path_factory.mktemp("trino-home")
    running = Stack(trino_settings(home), with_profile=TRINO_PROFILE)
    try:
        running.up()
        yield running
    finally:
        running.down()


def empty_lake(settings: FinlakeSettings, namespace: str = "market") -> None:
    """Drop every table of ``namespace`` from the profile's catalog (modules share the stack)."""
    catalog = open_catalog(settings)
    catalog.create_namespace_if_not_exists(namespace)
    for identifier in catalog.list_tables(namespace):
        catalog.drop_table(identifier)
