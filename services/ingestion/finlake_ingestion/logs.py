"""Structured logs of the ingestion service (the core's JSON lines)."""

from __future__ import annotations

from finlake.logs import JsonFormatter
from finlake.logs import configure_logging as _configure

__all__ = ["JsonFormatter", "configure_logging"]


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr; yfinance's own error lines are silenced (we count and log those)."""
    _configure(level, silent=("yfinance",))
