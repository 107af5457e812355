"""The interface every source implements: an iterator of batches of ``MarketTick``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from finlake.contracts.models import MarketTick

Headers = list[tuple[str, str | bytes | None]]


@dataclass
class Batch:
    """Ticks to publish together; ``confirm`` gets the delivered ones after a flush."""

    ticks: Sequence[MarketTick]
    headers: Sequence[Headers | None] | None = None
    confirm: Callable[[list[MarketTick]], None] | None = None


class TickSource(Protocol):
    """A source of market ticks; ``batches`` returns when it is exhausted or ``stop`` is set."""

    name: str

    def prepare(self) -> None:
        """Check the input before anything connects or publishes (e.g. validate a whole file)."""
        ...

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        """Batches until the source is exhausted or ``stop`` is set."""
        ...
