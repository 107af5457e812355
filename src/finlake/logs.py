"""Structured logs for every long-running process: one JSON object per line on stderr."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}

Redact = Callable[[str], str]


class JsonFormatter(logging.Formatter):
    """A record as a JSON line: time, level, logger, message, ``extra`` fields; ``redact`` masks
    secrets in the finished line."""

    def __init__(self, redact: Redact | None = None) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        line = json.dumps(entry, default=str)
        return self.redact(line) if self.redact is not None else line


def configure_logging(
    level: str = "INFO",
    *,
    redact: Redact | None = None,
    quiet: Iterable[str] = (),
    silent: Iterable[str] = (),
) -> None:
    """Send every log record to stderr as a JSON line (replaces existing root handlers).

    Loggers in ``quiet`` keep only warnings and worse; loggers in ``silent`` only criticals.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("httpx", "httpx2", "httpcore", *quiet):  # every request at INFO otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in silent:
        logging.getLogger(name).setLevel(logging.CRITICAL)
