"""Alert events for the alerting tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from finlake.contracts.models import AlertEvent

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def alert(
    n: int = 0, *, rule: str = "aapl-breakout", symbol: str = "AAPL", severity: str = "critical",
    fired_at: datetime | None = None, **fields: Any,
) -> AlertEvent:  # fmt: skip
    start = T0 + timedelta(minutes=n)
    values: dict[str, Any] = {
        "event_id": f"{rule}-{symbol}-{n}",
        "rule": rule,
        "kind": "price_cross",
        "symbol": symbol,
        "severity": severity,
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "fired_at": fired_at or start + timedelta(minutes=1),
        "value": 201.5 + n,
        "threshold": 200.0,
        "message": f"{symbol} crossed above 200 at {201.5 + n}",
        "labels": {"team": "desk"},
    }
    return AlertEvent(**{**values, **fields})
