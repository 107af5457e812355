"""The alerts dead-letter topic: the original record, with why and where it failed in headers."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from finlake.contracts.topics import DEAD_LETTER_SUFFIX
from finlake.errors import FinlakeError


class DeadLetterError(FinlakeError):
    """The dead-letter topic did not acknowledge a record."""


class DeadLetters:
    """Writes dead letters synchronously: a delivery counts as dead-lettered once acknowledged."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        self.topic = topic + DEAD_LETTER_SUFFIX
        self._producer = Producer(config)

    def send(
        self, key: str, value: bytes | None, reason: str, *, channel: str = "", attempts: int = 0,
        origin: tuple[str, int, int] | None = None,
    ) -> None:  # fmt: skip
        """Produce one dead letter and wait for its acknowledgement."""
        errors: list[str] = []

        def report(error: object, _message: object) -> None:
            if error is not None:
                errors.append(str(error))

        headers = {
            "finlake.reason": reason.encode(),
            "finlake.channel": channel.encode(),
            "finlake.attempts": str(attempts).encode(),
        }
        if origin is not None:
            headers["finlake.origin"] = f"{origin[0]}/{origin[1]}/{origin[2]}".encode()
        self._producer.produce(
            self.topic, value, key.encode(), headers=list(headers.items()), on_delivery=report
        )
        if self._producer.flush(15) or errors:
            raise DeadLetterError(f"dead letter for {key} not acknowledged: {errors or 'timeout'}")

    def close(self) -> None:
        """Flush what is left."""
        self._producer.flush(10)
