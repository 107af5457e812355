"""Settings of the ingestion service: the core fragments plus ``ingestion`` and ``yahoo``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import NoDecode

from finlake.config import FinlakeSettings
from finlake.contracts.topics import MARKET_DATA
from finlake.simulate import DEFAULT_SYMBOLS

SourceName = Literal["yahoo", "replay", "simulate"]
NEW_SYMBOL_REQUESTS = 2  # a time-zone probe, then the bars


class IngestionOptions(BaseModel):
    """What the service runs and where it reports (``FINLAKE_INGESTION__*``)."""

    source: SourceName = Field(default="yahoo", description="Source the service runs.")
    topic: str = Field(default=MARKET_DATA, description="Kafka topic the ticks go to.")
    http_host: str = Field(
        default="0.0.0.0", description="Listen host of /healthz, /readyz, /metrics."
    )
    http_port: int = Field(
        default=9108, ge=0, le=65535, description="Their port; 0 picks a free one."
    )
    log_level: str = Field(default="INFO", description="Root log level (JSON lines on stderr).")
    flush_timeout_s: float = Field(default=30.0, gt=0, description="Wait for deliveries on stop.")
    replay_file: Path | None = Field(default=None, description="File the replay source reads.")
    replay_pace: str = Field(default="fast", description="fast, original or Nx (e.g. 10x).")
    simulate_symbols: int = Field(default=5, ge=1, description="How many simulated symbols.")
    simulate_rate: float = Field(
        default=100.0, ge=0, description="Simulated ticks/s; 0 = no limit."
    )
    simulate_seed: int = Field(default=7, description="Seed of the simulator's random walk.")


class YahooSettings(BaseModel):
    """The Yahoo Finance poller (``FINLAKE_YAHOO__*``): symbols, cadence and politeness."""

    symbols: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_SYMBOLS, min_length=1, description="Tickers, comma-separated in env."
    )
    poll_interval_s: float = Field(
        default=30.0, gt=0, description="Seconds between poll cycles; also a cycle's deadline."
    )
    interval: Literal["1m", "2m", "5m", "15m", "60m"] = Field(
        default="1m", description="Bar size requested from Yahoo."
    )
    lookback_s: float = Field(
        default=3600.0, gt=0, description="History fetched for a symbol never seen before."
    )
    requests_per_minute: int = Field(
        default=60,
        description="Request budget: HTTP requests to Yahoo per rolling minute (yfinance's cookie"
        " and crumb steps and repeats included); at least 2 (a new symbol's).",
    )
    request_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of each HTTP request to Yahoo."
    )
    attempts: int = Field(
        default=3, ge=1, description="Tries per request on timeouts and bad responses."
    )
    backoff_base_s: float = Field(default=1.0, gt=0, description="Full-jitter backoff base.")
    backoff_max_s: float = Field(default=300.0, gt=0, description="Full-jitter backoff cap.")
    breaker_failures: int = Field(
        default=3, ge=1, description="Consecutive failures that open the circuit breaker."
    )
    breaker_reset_s: float = Field(
        default=60.0, gt=0, description="First open period; doubles on each re-open."
    )
    breaker_max_reset_s: float = Field(default=900.0, gt=0, description="Longest open period.")
    unknown_symbol_retry_s: float = Field(
        default=3600.0, gt=0, description="How long an unknown symbol is left alone."
    )
    prepost: bool = Field(default=False, description="Include pre- and post-market bars.")

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip().upper() for part in value.split(",") if part.strip())
        return value

    @field_validator("requests_per_minute")
    @classmethod
    def _fits_a_new_symbol(cls, value: int) -> int:
        # Fetching a symbol the first time takes two requests (yfinance probes its time zone
        # first): a smaller budget would poll forever and never publish a tick.
        if value < NEW_SYMBOL_REQUESTS:
            raise PydanticCustomError(
                "budget_too_small",
                "{value} request(s) per minute can never fetch a new symbol, which takes "
                "{needed} (yfinance probes its time zone first); use at least {needed}",
                {"value": value, "needed": NEW_SYMBOL_REQUESTS},
            )
        return value


class IngestionSettings(FinlakeSettings):
    """Everything the ingestion service reads: FINLAKE_* env over defaults."""

    ingestion: IngestionOptions = Field(default_factory=IngestionOptions)
    yahoo: YahooSettings = Field(default_factory=YahooSettings)

    @property
    def state_dir(self) -> Path:
        """Where the service keeps its state (Yahoo watermarks, yfinance's caches)."""
        return self.home.resolve() / "ingestion"


@lru_cache
def get_settings() -> IngestionSettings:
    """The effective settings, built once per process."""
    return IngestionSettings()
