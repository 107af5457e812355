"""What one app instance holds: settings, the market reader, key digests, the rate limiter."""

from __future__ import annotations

from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from finlake_query_api.alert_feed import AlertFeed
from finlake_query_api.config import Settings
from finlake_query_api.feed_relay import KafkaFeedRelay
from finlake_query_api.market import Market
from finlake_query_api.telemetry import Telemetry


@dataclass
class AppState:
    """Per-app singletons, built by create_app (never at import time)."""

    settings: Settings
    market: Market
    key_digests: frozenset[str]
    telemetry: Telemetry
    publisher_digests: frozenset[str] = frozenset()
    """The keys that may publish to the live feed (a subset of ``key_digests``)."""
    rate_limit: RateLimitItem = field(init=False)
    limiter: MovingWindowRateLimiter = field(init=False)
    alert_feed: AlertFeed = field(default_factory=AlertFeed)
    feed_relay: KafkaFeedRelay | None = None
    """Set when the live feed goes through Kafka (``api.live_feed``)."""

    def __post_init__(self) -> None:
        self.rate_limit = parse(self.settings.api.rate_limit)
        # The asyncio flavour: the threaded MemoryStorage starts a timer thread per burst of
        # hits, which cost more than serving a cached page.
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
