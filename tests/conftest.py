"""Shared fixtures: tests never touch the developer's ``.finlake`` (each gets its own home)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from finlake.config import get_settings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def artifacts_dir() -> Path:
    """Where screenshots and other test artifacts go (kept after the run)."""
    folder = Path(__file__).parent.parent / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder
