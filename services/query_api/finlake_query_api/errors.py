"""Domain errors of the query API; main.py maps each to one HTTP status, once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from finlake.errors import FinlakeError, UnavailableError


class UnknownSymbolError(FinlakeError, LookupError):
    """The lake has no data for this symbol."""


class InvalidRangeError(FinlakeError, ValueError):
    """A time range is inverted, empty or larger than the interval allows."""


class InvalidCursorError(FinlakeError, ValueError):
    """A pagination cursor is malformed or belongs to another query."""


class NotAuthenticatedError(FinlakeError):
    """The request carries no valid API key."""


class NotPermittedError(FinlakeError):
    """The API key is valid but may not do this (e.g. publish alerts: a reading key)."""


class RateLimitedError(FinlakeError):
    """The API key used up its request budget for now."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LakeUnavailableError(UnavailableError):
    """The lake could not answer (catalog unreachable, table not written yet)."""


def lake_unavailable(error: FinlakeError) -> LakeUnavailableError:
    """The lake failing with ``error``; what clients are told keeps the reason clients may read."""
    if isinstance(error, UnavailableError):
        return LakeUnavailableError(error.public, cause=error.cause)
    return LakeUnavailableError("the lake could not answer", cause=error)


@contextlib.contextmanager
def asking_the_engine() -> Iterator[None]:
    """Engine calls inside: a failure of the lake, whatever the engine calls it (Trino
    unreachable, a query it rejected), is a LakeUnavailableError, as in ``Market.query``."""
    try:
        yield
    except LakeUnavailableError:
        raise
    except FinlakeError as error:
        raise lake_unavailable(error) from error


class FeedUnavailableError(UnavailableError):
    """The live feed's Kafka topic did not take the posted events (the poster retries)."""


class ModelRegistryUnavailableError(UnavailableError):
    """The model registry (MLflow's tracking server) could not give the champion model."""
