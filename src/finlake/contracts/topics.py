"""The Kafka topics the contracts declare, with partitions and retention from configuration."""

from __future__ import annotations

from dataclasses import dataclass

from finlake.config import TopicSettings

MARKET_DATA = "market-data"
ALERTS = "alerts"
ALERT_FEED = "alerts.feed"
"""The dashboard's live feed: the alert events the query API replicas show (JSON, by event id)."""
FEED_RETENTION_MS = 24 * 60 * 60 * 1000
DEAD_LETTER_SUFFIX = ".dlq"


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, size, retention and what its records carry."""

    name: str
    partitions: int
    retention_ms: int
    key: str
    contract: str | None

    @property
    def config(self) -> dict[str, str]:
        """Topic-level configs passed to the broker on creation."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}


def declared_topics(settings: TopicSettings) -> list[TopicSpec]:
    """Every topic the platform uses, dead-letter topics included."""
    data = [
        TopicSpec(
            MARKET_DATA,
            settings.market_data_partitions,
            settings.retention_ms,
            key="symbol",
            contract="market_tick",
        ),
        TopicSpec(
            ALERTS,
            settings.alerts_partitions,
            settings.retention_ms,
            key="event_id",
            contract="alert_event",
        ),
    ]
    dead_letters = [
        TopicSpec(
            f"{topic.name}{DEAD_LETTER_SUFFIX}",
            1,
            settings.dead_letter_retention_ms,
            key=topic.key,
            contract=None,
        )
        for topic in data
    ]
    feed = TopicSpec(ALERT_FEED, 1, FEED_RETENTION_MS, key="event_id", contract=None)
    return [*data, *dead_letters, feed]
