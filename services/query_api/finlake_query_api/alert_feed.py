"""The dashboard's live alert feed: recent alerts in memory, fanned out to SSE subscribers.

The alert service's dashboard channel posts here; an id already shown is ignored, which makes
its retries (and a resend after a crash) harmless. With several replicas the posts go through
Kafka to every replica's feed (``feed_relay``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

RECENT = 500
SUBSCRIBER_BUFFER = 1000


class AlertItem(BaseModel):
    """One alert event (or a notice such as a silence expiring) as the feed carries it."""

    model_config = ConfigDict(frozen=True)
    type: Literal["alert", "silence_expired"] = "alert"
    # No whitespace or control character: the id is the SSE stream's `id:` line, where a line
    # break would start a record of the poster's own (a forged alert on every dashboard).
    event_id: str = Field(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f\x7f]+$")
    rule: str = Field(max_length=200)
    kind: str = Field(max_length=50)
    symbol: str = Field(max_length=32)
    severity: str = Field(max_length=20)
    window_start: AwareDatetime
    window_end: AwareDatetime
    fired_at: AwareDatetime
    # JSON has no NaN or Infinity: an item that held one would not reach the other replicas.
    value: float = Field(allow_inf_nan=False)
    threshold: float = Field(allow_inf_nan=False)
    message: str = Field(max_length=2000)
    labels: dict[str, str] = Field(default_factory=dict)


class AlertBatch(BaseModel):
    """What the alert service posts."""

    events: list[AlertItem] = Field(min_length=1, max_length=200)


class Accepted(BaseModel):
    """How many posted events were new, and how many had been shown before."""

    accepted: int
    duplicates: int


class RecentAlerts(BaseModel):
    """The most recent alerts, newest first."""

    alerts: list[AlertItem]


class AlertFeed:
    """Recent alerts and the queues of connected streams (used from the event loop only)."""

    def __init__(self, size: int = RECENT) -> None:
        self._recent: deque[AlertItem] = deque(maxlen=size)
        self._ids: set[str] = set()
        self._subscribers: set[asyncio.Queue[AlertItem | None]] = set()
        self._closed = False

    def has(self, event_id: str) -> bool:
        """Whether the item with this id is among the recent ones."""
        return event_id in self._ids

    def publish(self, items: Sequence[AlertItem], *, notify: bool = True) -> Accepted:
        """Remember the items not seen before and fan them out (``notify``; not for past items
        read back at start, which the recent list shows)."""
        accepted = 0
        for item in items:
            if item.event_id in self._ids:
                continue
            if len(self._recent) == self._recent.maxlen:
                self._ids.discard(self._recent[0].event_id)
            self._recent.append(item)
            self._ids.add(item.event_id)
            accepted += 1
            for subscriber in list(self._subscribers) if notify else ():
                try:
                    subscriber.put_nowait(item)
                except asyncio.QueueFull:
                    # A stream that stopped reading: end it (the browser reconnects and reloads
                    # the recent list) rather than grow without bound.
                    self._end(subscriber)
        return Accepted(accepted=accepted, duplicates=len(items) - accepted)

    def subscribe(self) -> asyncio.Queue[AlertItem | None]:
        """A queue receiving every new item (None: the stream must end)."""
        subscriber: asyncio.Queue[AlertItem | None] = asyncio.Queue(SUBSCRIBER_BUFFER)
        if self._closed:
            subscriber.put_nowait(None)
        else:
            self._subscribers.add(subscriber)
        return subscriber

    def close(self) -> None:
        """End every stream after what it holds, and any stream opened later at once: the
        server is stopping, and its browsers reconnect elsewhere."""
        self._closed = True
        for subscriber in list(self._subscribers):
            self._end(subscriber)

    def _end(self, subscriber: asyncio.Queue[AlertItem | None]) -> None:
        self._subscribers.discard(subscriber)
        if subscriber.full():  # no room for the end mark: drop what it did not read
            while not subscriber.empty():
                subscriber.get_nowait()
        subscriber.put_nowait(None)

    def unsubscribe(self, subscriber: asyncio.Queue[AlertItem | None]) -> None:
        """Stop feeding a queue."""
        self._subscribers.discard(subscriber)

    def recent(self, limit: int, since: datetime | None = None) -> list[AlertItem]:
        """Up to ``limit`` recent items, newest first, fired after ``since`` if given."""
        items = [i for i in reversed(self._recent) if since is None or i.fired_at > since]
        return items[:limit]
