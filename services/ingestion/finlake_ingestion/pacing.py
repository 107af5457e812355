"""Pacing: replay at event-time speed (original, Nx) and publish at a fixed wall-clock rate."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from finlake.errors import ConfigurationError

_SPEED = re.compile(r"^(\d+(?:\.\d+)?)x$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_pace(text: str) -> float | None:
    """``fast`` -> None (no pacing), ``original`` -> 1.0, ``10x`` -> 10.0."""
    value = text.strip().lower()
    if value in ("fast", "max", "asap"):
        return None
    if value in ("original", "1x", "real", "realtime"):
        return 1.0
    match = _SPEED.match(value)
    if match is None or float(match.group(1)) <= 0:
        raise ConfigurationError(f"pace {text!r} is not fast, original or a speed-up like 10x")
    return float(match.group(1))


def parse_duration(text: str) -> timedelta:
    """``250ms``, ``1s``, ``5m``, ``2h``, ``1d`` or plain seconds, as a timedelta."""
    match = _DURATION.match(text.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        raise ConfigurationError(f"duration {text!r} is not like 500ms, 1s, 5m, 2h or 1d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


class EventPacer:
    """Spaces records in wall time as their event times are spaced, divided by ``speed``."""

    def __init__(self, speed: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self._clock = clock
        self._origin: tuple[datetime, float] | None = None

    def delay_for(self, event_time: datetime) -> float:
        """Seconds to wait before publishing a record of ``event_time`` (0 when it is due)."""
        now = self._clock()
        if self._origin is None:
            self._origin = (event_time, now)
            return 0.0
        first_event, first_wall = self._origin
        due = first_wall + (event_time - first_event).total_seconds() / self.speed
        return max(0.0, due - now)


class RatePacer:
    """Lets ``rate`` records per second through, on average, from the first one."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._start: float | None = None
        self._sent = 0

    def delay_for(self, count: int) -> float:
        """Seconds to wait before sending ``count`` more records."""
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start + self._sent / self.rate
        self._sent += count
        return max(0.0, due - now)
