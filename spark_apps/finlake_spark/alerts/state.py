"""What the detector remembers per symbol between micro-batches (one JSON value in the state store).

Everything here is bounded by the rules: the tick buffer spans the longest percent_move window,
the buckets the longest lookback per bucket width, and the rule states one small record per rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Tick:
    """One valid tick of one symbol, as the detector sees it."""

    timestamp_ms: int
    price: float
    volume: int


class Firing(BaseModel):
    """One alert the detector raised, before it is written to Kafka and the lake."""

    event_id: str
    rule: str
    kind: str
    symbol: str
    severity: str
    window_start_ms: int
    window_end_ms: int
    fired_at_ms: int
    value: float
    threshold: float
    message: str
    labels: dict[str, str] = Field(default_factory=dict)


class Bucket(BaseModel):
    """One aligned bucket of ``window`` width: volume so far, last price, close before it."""

    volume: int = 0
    last: float
    prev_close: float | None = None

    @property
    def return_(self) -> float | None:
        """Close-to-close return: last price in the bucket over the last price before it."""
        if self.prev_close is None or self.prev_close <= 0:
            return None
        return self.last / self.prev_close - 1


class Day(BaseModel):
    """The current UTC day: its opening price and the previous day's last price."""

    day: int
    open: float
    prev_close: float | None = None


class RuleState(BaseModel):
    """Where one rule stands for one symbol."""

    fingerprint: str
    since_ms: int | None = None
    """Start of the current episode (the condition holding at every tick since)."""
    episode_fired: bool = False
    last_fired_bar_ms: int | None = None
    fired_once: bool = False
    close_bar_ms: int | None = None
    """once_per_bar_close: the bar whose close is pending."""
    close_candidate: Firing | None = None
    """once_per_bar_close: what fires when that bar closes (the condition at its last tick)."""
    closed_through_ms: int | None = None
    """once_per_bar_close: bars ending at or before this were closed (by the watermark)."""
    gap_closed_day: int | None = None
    """gap: the day on which the price came back inside the threshold (no more firing that day)."""


class SymbolState(BaseModel):
    """Everything kept for one symbol."""

    last_ms: int | None = None
    last_price: float | None = None
    ticks: list[tuple[int, float]] = Field(default_factory=list)
    buckets: dict[int, dict[int, Bucket]] = Field(default_factory=dict)
    day: Day | None = None
    rules: dict[str, RuleState] = Field(default_factory=dict)
    timer_ms: int | None = None
    """The event-time timer registered for the symbol (kept here: no listTimers round trip)."""
