"""Channel senders: each sends one message for a group of events of one rule, or raises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from finlake.contracts.models import AlertEvent
from finlake_alerting.routing import Target


class DeliveryError(Exception):
    """A send attempt failed; ``permanent`` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    """Sends one message carrying ``events`` to ``target``.

    One sender serves every target of its channel type, each target from its own worker thread:
    ``send`` must be safe to call from several threads at once. ``close`` is called once, when
    every worker stopped or the shutdown grace ran out (a send still running may then fail)."""

    def send(self, events: Sequence[AlertEvent], target: Target) -> None:
        """Deliver or raise (DeliveryError, or any error: retried)."""

    def close(self) -> None:
        """Release connections."""
