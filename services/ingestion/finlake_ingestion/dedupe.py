"""Never publish one (symbol, timestamp) twice: a watermark per symbol plus recent timestamps."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from finlake.contracts.models import MarketTick
from finlake.errors import ConfigurationError
from finlake_ingestion.encoding import EPOCH, epoch_millis

STATE_VERSION = 1


class SeenTicks:
    """Remembers published timestamps per symbol.

    Everything at or before ``latest - overlap`` counts as seen; inside the overlap the exact
    timestamps are kept, so a bar Yahoo fills in late is still published once.
    """

    def __init__(self, overlap: timedelta) -> None:
        self.overlap = overlap
        self._latest: dict[str, int] = {}
        self._recent: dict[str, set[int]] = {}

    def latest(self, symbol: str) -> datetime | None:
        """The newest published timestamp of ``symbol``, if any."""
        millis = self._latest.get(symbol)
        return None if millis is None else _from_millis(millis)

    def _floor(self, symbol: str) -> int | None:
        latest = self._latest.get(symbol)
        return None if latest is None else latest - self.overlap // timedelta(milliseconds=1)

    def is_seen(self, symbol: str, millis: int) -> bool:
        """Whether (symbol, millis) was published (or is too old to tell)."""
        floor = self._floor(symbol)
        if floor is None:
            return False
        return millis <= floor or millis in self._recent.get(symbol, ())

    def fresh(self, ticks: Iterable[MarketTick]) -> list[MarketTick]:
        """The ticks not published yet, each (symbol, timestamp) once, in input order."""
        taken: set[tuple[str, int]] = set()
        out = []
        for tick in ticks:
            key = (tick.symbol, epoch_millis(tick.timestamp))
            if key in taken or self.is_seen(*key):
                continue
            taken.add(key)
            out.append(tick)
        return out

    def mark(self, ticks: Iterable[MarketTick]) -> None:
        """Record ``ticks`` as published and forget timestamps that fell below the overlap."""
        touched = set()
        for tick in ticks:
            millis = epoch_millis(tick.timestamp)
            self._recent.setdefault(tick.symbol, set()).add(millis)
            if millis > self._latest.get(tick.symbol, millis - 1):
                self._latest[tick.symbol] = millis
            touched.add(tick.symbol)
        for symbol in touched:
            floor = self._floor(symbol)
            self._recent[symbol] = {m for m in self._recent[symbol] if floor is None or m > floor}

    def to_json(self) -> str:
        """The state as JSON (what ``load`` reads)."""
        symbols = {
            symbol: {"latest": latest, "recent": sorted(self._recent.get(symbol, ()))}
            for symbol, latest in sorted(self._latest.items())
        }
        return json.dumps({"version": STATE_VERSION, "symbols": symbols})

    def save(self, path: Path) -> None:
        """Write the state atomically (a crash leaves the old file or the new one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(self.to_json())
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path, overlap: timedelta) -> SeenTicks:
        """The state saved at ``path``, or an empty one when there is no file."""
        seen = cls(overlap)
        if not path.exists():
            return seen
        try:
            data = json.loads(path.read_text())
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
            for symbol, entry in data["symbols"].items():
                seen._latest[symbol] = int(entry["latest"])
                seen._recent[symbol] = {int(m) for m in entry["recent"]}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ConfigurationError(
                f"the ingestion state file {path} is unreadable ({error}); move it away to start "
                "from the configured lookback"
            ) from error
        return seen


def _from_millis(millis: int) -> datetime:
    return EPOCH + timedelta(milliseconds=millis)
