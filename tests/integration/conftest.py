"""Session fixtures: the real local stack (Kafka + Apicurio) on free ports in a fresh home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from finlake.config import FinlakeSettings
from finlake.stack.manager import Stack
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
