"""Prometheus metrics of the alert detection job (served by the driver)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "finlake_alert_detection_events_total",
    "Alert events emitted, per rule and kind.",
    ["rule", "kind"],
)
DUPLICATES = Counter(
    "finlake_alert_detection_duplicates_total",
    "Firings not emitted because alerts.events already holds their event id (a replay).",
)
REJECTED = Counter(
    "finlake_alert_detection_rejected_records_total",
    "market-data records not evaluated: undecodable, or without a positive price and a volume.",
)
RULES = Gauge("finlake_alert_detection_rules", "Active alert rules.")
RULE_ERRORS = Counter(
    "finlake_alert_detection_rule_reload_errors_total",
    "Rule reloads refused because a rule file was invalid (the previous rules stay active).",
)
BATCH_SECONDS = Histogram(
    "finlake_alert_detection_batch_duration_seconds",
    "Duration of one micro-batch.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
UNSTORED = Counter(
    "finlake_alert_detection_unstored_records_total",
    "Records of the alerts topic not stored in alerts.events because they are not alert events.",
)
