"""Structured logs of the alert service (the core's JSON lines), secrets masked."""

from __future__ import annotations

from finlake.logs import JsonFormatter
from finlake.logs import configure_logging as _configure
from finlake_alerting.credentials import Redactor

__all__ = ["JsonFormatter", "configure_logging"]


def configure_logging(level: str, redact: Redactor) -> None:
    """JSON lines on stderr with secrets masked; slack_sdk logs webhook URLs at DEBUG."""
    _configure(level, redact=redact, quiet=("slack_sdk", "uvicorn.access"))
