"""Prometheus metrics of one service instance (its own registry), labelled by channel."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """Consumed, suppressed and per-channel delivery counters and latencies."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.consumed = Counter("finlake_alerts_consumed", "Alert events consumed.", registry=r)
        self.undecodable = Counter(
            "finlake_alerts_undecodable", "Records on the alerts topic that were not alert "
            "events (dead-lettered).", registry=r,
        )  # fmt: skip
        self.suppressed = Counter(
            "finlake_alerts_suppressed", "Events not notified, by reason.", ["reason"], registry=r
        )
        self.sent = Counter(
            "finlake_alerts_sent", "Events delivered, per channel.", ["channel"], registry=r
        )
        self.messages = Counter(
            "finlake_alerts_messages", "Messages sent (one may group several events).",
            ["channel"], registry=r,
        )  # fmt: skip
        self.failed = Counter(
            "finlake_alerts_failed", "Failed send attempts, per channel.", ["channel"], registry=r
        )
        self.retried = Counter(
            "finlake_alerts_retried", "Send attempts retried after a backoff.", ["channel"],
            registry=r,
        )  # fmt: skip
        self.dead_lettered = Counter(
            "finlake_alerts_dead_lettered", "Events given up on, per channel.", ["channel"],
            registry=r,
        )  # fmt: skip
        self.skipped = Counter(
            "finlake_alerts_already_delivered", "Redelivered events the delivery log had sent.",
            ["channel"], registry=r,
        )  # fmt: skip
        self.send_seconds = Histogram(
            "finlake_alerts_send_seconds", "Duration of one successful send.", ["channel"],
            buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "finlake_alerts_delivery_latency_seconds", "From fired_at to delivered.", ["channel"],
            buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.queued = Gauge(
            "finlake_alerts_queued", "Deliveries waiting per channel.", ["channel"], registry=r
        )
        self.silences_active = Gauge(
            "finlake_alerts_silences_active", "Silences in force now.", registry=r
        )
        self.ready = Gauge("finlake_alerts_ready", "1 when consuming.", registry=r)
