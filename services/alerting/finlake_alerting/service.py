"""The alert service: consume ``alerts``, decide (dedupe, silences, cooldown, routes), hand each
delivery to its target's worker, and commit an offset only once every channel of every event
below it was delivered or dead-lettered."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from finlake.contracts.alert_rule import ChannelType
from finlake.contracts.models import AlertEvent
from finlake.contracts.serde import ContractDeserializer, registry_client
from finlake.errors import ContractViolation
from finlake.kafka_io import producer_config
from finlake.stack.kafka import CLIENT_LOGGER
from finlake_alerting.channel_worker import Job, Outcomes, dead_letter
from finlake_alerting.channels import Sender
from finlake_alerting.channels.content import SILENCE_EXPIRED
from finlake_alerting.channels.dashboard_feed import DashboardSender
from finlake_alerting.channels.mailer import SmtpSender
from finlake_alerting.channels.slack_webhook import SlackSender
from finlake_alerting.config import Settings
from finlake_alerting.credentials import Redactor
from finlake_alerting.dead_letters import DeadLetters
from finlake_alerting.delivery_pool import DeliveryPool, stop_pools
from finlake_alerting.metrics import Metrics
from finlake_alerting.offsets import OffsetTracker
from finlake_alerting.routing import DASHBOARD, Plan, plan
from finlake_alerting.rules import RuleBook
from finlake_alerting.silences import Silence, SilenceCreate, SilenceState
from finlake_alerting.store import FINAL, StateStore, Status

log = logging.getLogger(__name__)
IN_DOUBT = "delivery in doubt: the service stopped during a send attempt"


def collect_secrets(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Every secret value the service may hold, for the redactor."""
    alerting = settings.alerting
    values = [
        s.get_secret_value()
        for s in (alerting.smtp.password, alerting.slack.webhook_url, alerting.dashboard.api_key,
                  settings.registry.basic_auth_password)
        if s is not None
    ]  # fmt: skip
    return values + [v for k, v in environ.items() if k.startswith("FINLAKE_SECRET_")]


class AlertService:
    """Owns the consumer, the delivery workers (one per target), the state store and the silences.

    ``senders`` (one per channel type, for tests) are shared by the workers of their type's
    targets, so each must be thread-safe."""

    def __init__(
        self, settings: Settings, *, senders: Mapping[ChannelType, Sender] | None = None,
        redact: Redactor | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        config = settings.alerting
        self.redact = redact or Redactor(collect_secrets(settings, os.environ))
        self.metrics = Metrics()
        self.rules = RuleBook(config.rule_paths)
        self.rules.load()
        self.store = StateStore(settings.state_db)
        self.dead_letters = DeadLetters(producer_config(settings), config.topic)
        self.tracker = OffsetTracker()
        self.stopping = threading.Event()
        self._done: queue.Queue[Job] = queue.Queue()
        # (event id, target key) being delivered -> the records (partition, offset) whose offsets
        # wait for that delivery: the one that queued it, and any re-read of the event meanwhile.
        self._in_flight: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self._silences_lock = threading.Lock()
        self._silences = self.store.silences()
        self._heartbeat = time.monotonic()
        self.is_consuming = False
        senders = senders or {
            ChannelType.DASHBOARD: DashboardSender(config.dashboard),
            ChannelType.EMAIL: SmtpSender(config.smtp),
            ChannelType.SLACK: SlackSender(config.slack),
        }
        limits = {ChannelType.DASHBOARD: config.dashboard.rate_limit,
                  ChannelType.EMAIL: config.smtp.rate_limit,
                  ChannelType.SLACK: config.slack.rate_limit}  # fmt: skip
        outcomes = Outcomes(
            store=self.store, dead_letters=self.dead_letters, metrics=self.metrics,
            settings=config, redact=self.redact, on_done=self._done.put,
        )  # fmt: skip
        self.pools = {
            channel: DeliveryPool(
                channel.value, senders[channel], rate_limit=limits[channel], outcomes=outcomes
            )
            for channel in ChannelType
        }

    # -- silences (called from the HTTP API's threads) -----------------------------------------

    def add_silence(self, request: SilenceCreate) -> Silence:
        """Create a silence; it applies to events decided from now on."""
        silence = Silence.create(request, datetime.now(UTC))
        self.store.add_silence(silence)
        self._reload_silences()
        log.info("silence created", extra={"silence": silence.id, "matchers": silence.describe()})
        return silence

    def expire_silence(self, silence_id: str) -> Silence | None:
        """End a silence now (its expiry is announced like any other)."""
        silence = self.store.expire_silence(silence_id, datetime.now(UTC))
        self._reload_silences()
        return silence

    def silences(self) -> list[Silence]:
        """Every silence, suppression counts included."""
        return self.store.silences()

    def _reload_silences(self) -> None:
        with self._silences_lock:
            self._silences = self.store.silences()

    # -- probes --------------------------------------------------------------------------------

    def is_alive(self, stale_after_s: float = 30.0) -> bool:
        """The consume loop turned recently."""
        return time.monotonic() - self._heartbeat <= stale_after_s

    def status(self) -> dict[str, Any]:
        """Queues (per channel type; target keys name email recipients, so they are not shown),
        outstanding deliveries, delivery-log counts, rules."""
        return {
            "consuming": self.is_consuming,
            "rules": len(self.rules),
            "outstanding": self.tracker.outstanding,
            "queued": {c.value: pool.pending for c, pool in self.pools.items()},
            "deliveries": self.store.counts(),
        }

    # -- deciding ------------------------------------------------------------------------------

    def decide(self, event: AlertEvent) -> Plan:
        """The event's plan: the stored one on a redelivery, else a new one (then stored)."""
        known = self.store.decision(event.event_id)
        if known is not None:
            return known
        with self._silences_lock:
            silences = list(self._silences)
        decided = plan(
            event,
            rule=self.rules.get(event.rule),
            routes=self.settings.alerting.routes,
            silences=silences,
            last_notified=self.store.last_notified(event.rule, event.symbol),
            default_cooldown=timedelta(seconds=self.settings.alerting.default_cooldown_s),
            now=datetime.now(UTC),
        )
        self.store.record_decision(
            event.event_id, event.rule, event.symbol, event.fired_at, decided
        )
        return decided

    def dispatch(
        self, event: AlertEvent, payload: bytes | None, origin: tuple[str, int, int] | None
    ) -> int:
        """Queue the event's outstanding deliveries; returns how many the record waits for
        (queued now, or still in flight from an earlier read of the same event)."""
        if self.settings.alerting.only_listed_rules and self.rules.get(event.rule) is None:
            # Another rule's event: its own alerting Deployment delivers it (operator-managed).
            self.metrics.suppressed.labels("other-rule").inc()
            return 0
        decided = self.decide(event)
        if not decided.notifies:
            reason = (decided.suppressed_by or "no channel").split(":")[0]
            self.metrics.suppressed.labels(reason).inc()
            log.info("suppressed", extra={"event": event.event_id, "reason": decided.suppressed_by})
            return 0
        statuses = self.store.statuses(event.event_id, decided.targets)
        queued = 0
        for target in decided.targets:
            status = statuses.get(target.key)
            channel = target.type.value
            if status in FINAL:
                self.metrics.skipped.labels(channel).inc()
                continue
            waiting = self._in_flight.get((event.event_id, target.key))
            if waiting is not None:
                # Read again (its partition came back after a rebalance) while still being
                # delivered: this record's offset waits for that delivery to end too.
                if origin is not None:
                    waiting.append(origin[1:])
                    queued += 1
                continue
            job = Job(event, target, payload, origin)
            if status is Status.SENDING and target.type is not ChannelType.DASHBOARD:
                # The last run died mid-send: it may have gone out. Sending again could
                # duplicate it, so it is dead-lettered for a person to check (the dashboard's
                # endpoint is idempotent, so that one is simply sent again).
                dead_letter(self.dead_letters, job, IN_DOUBT, 0)
                self.store.mark([event.event_id], target.key, Status.DEAD_LETTERED,
                                detail=IN_DOUBT)  # fmt: skip
                self.metrics.dead_lettered.labels(channel).inc()
                log.warning("in doubt", extra={"event": event.event_id, "channel": target.key})
                continue
            self._in_flight[(event.event_id, target.key)] = [origin[1:]] if origin else []
            self.pools[target.type].submit(job)
            queued += 1
        return queued

    # -- the loop ------------------------------------------------------------------------------

    def _handle(self, message: Message, decode: ContractDeserializer[AlertEvent]) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error)
            return
        topic, partition, offset = str(message.topic()), int(message.partition() or 0), int(
            message.offset() or 0
        )  # fmt: skip
        origin = (topic, partition, offset)
        self.metrics.consumed.inc()
        payload = message.value()
        try:
            event = decode(payload)
        except ContractViolation as violation:
            key = (message.key() or b"").decode(errors="replace") or f"{partition}-{offset}"
            reason = f"not an alert event: {violation}"
            self.dead_letters.send(key, payload, reason, origin=origin)
            self.metrics.undecodable.inc()
            log.error("undecodable record dead-lettered", extra={"origin": origin})
            self.tracker.track(partition, offset, 0)
            return
        self.tracker.track(partition, offset, self.dispatch(event, payload, origin))

    def _drain_done(self) -> None:
        while True:
            try:
                job = self._done.get_nowait()
            except queue.Empty:
                return
            waiting = self._in_flight.pop((job.event.event_id, job.target.key), [])
            for partition, offset in waiting:
                self.tracker.done(partition, offset)
            silence_id = job.event.labels.get("silence_id")
            if job.origin is None and job.event.kind == SILENCE_EXPIRED and silence_id:
                # Only now: a notice still being retried when the service stops is announced
                # by the next run.
                self.store.mark_announced(silence_id)

    def forget_partitions(self, partitions: list[int]) -> None:
        """Revoked: their records stop waiting for deliveries still in flight (the deliveries go
        on; whoever reads the records next counts them again, this consumer included)."""
        self.tracker.forget(partitions)
        revoked = set(partitions)
        for waiting in self._in_flight.values():
            waiting[:] = [record for record in waiting if record[0] not in revoked]

    def _commit(self, consumer: Consumer, *, asynchronous: bool = True) -> None:
        offsets = self.tracker.committable()
        if not offsets:
            return
        topic = self.settings.alerting.topic
        partitions = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        try:
            if asynchronous:
                consumer.commit(offsets=partitions, asynchronous=True)
            else:
                consumer.commit(offsets=partitions, asynchronous=False)
        except Exception as error:  # e.g. a rebalance in progress: the next turn commits again
            log.warning("commit failed: %s", error)
            return
        self.tracker.committed(offsets)

    def announce_expired_silences(self) -> None:
        """Hand every silence that ended (and was not announced yet) to the dashboard channel;
        it counts as announced once the notice is delivered or dead-lettered."""
        now = datetime.now(UTC)
        for silence in self.store.unannounced_expired(now):
            notice_id = f"silence-{silence.id}-expired"
            if (notice_id, DASHBOARD.key) in self._in_flight:
                continue
            notice = AlertEvent(
                event_id=notice_id, rule="silence", kind=SILENCE_EXPIRED,
                symbol="*", severity="info", window_start=silence.starts_at,
                window_end=silence.ends_at, fired_at=now, value=float(silence.suppressed),
                threshold=0.0, labels={"silence_id": silence.id},
                message=f"Silence {silence.describe()} expired after suppressing "
                f"{silence.suppressed} alert(s).",
            )  # fmt: skip
            if self.store.statuses(notice_id).get(DASHBOARD.key) in FINAL:
                self.store.mark_announced(silence.id)  # the last run stopped before recording it
                continue
            self._in_flight[(notice_id, DASHBOARD.key)] = []
            self.pools[ChannelType.DASHBOARD].submit(Job(notice, DASHBOARD))
            log.info("silence expired", extra={"silence": silence.id})
        with self._silences_lock:
            active = sum(s.state(now) is SilenceState.ACTIVE for s in self._silences)
        self.metrics.silences_active.set(active)

    def _consumer(self) -> Consumer:
        config = self.settings.alerting
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka.bootstrap,
                "logger": CLIENT_LOGGER,
                "group.id": config.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 10_000,
            }
        )

        def on_revoke(revoking: Consumer, partitions: list[TopicPartition]) -> None:
            self._drain_done()
            self._commit(revoking, asynchronous=False)
            self.forget_partitions([int(p.partition) for p in partitions])

        def on_assign(_: Consumer, partitions: list[TopicPartition]) -> None:
            self.is_consuming = True
            self.metrics.ready.set(1)
            log.info("assigned", extra={"partitions": [p.partition for p in partitions]})

        consumer.subscribe([config.topic], on_assign=on_assign, on_revoke=on_revoke)
        return consumer

    def run(self) -> None:
        """Consume until ``stopping`` is set, then drain, commit and close."""
        config = self.settings.alerting
        decode = ContractDeserializer(
            registry_client(self.settings.registry), config.topic, AlertEvent
        )
        for pool in self.pools.values():
            pool.start()
        consumer = self._consumer()
        next_check = 0.0
        log.info("alert service consuming", extra={"topic": config.topic, "rules": len(self.rules)})
        try:
            while not self.stopping.is_set():
                self._heartbeat = time.monotonic()
                for message in consumer.consume(num_messages=200, timeout=0.05):
                    self._handle(message, decode)
                self._drain_done()
                self._commit(consumer)
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + config.silence_check_s
                    self.rules.reload_if_changed()
                    self.announce_expired_silences()
        finally:
            self.is_consuming = False
            self.metrics.ready.set(0)
            log.info("stopping: finishing queued deliveries")
            deadline = time.monotonic() + config.shutdown_grace_s
            stop_pools(self.pools.values(), deadline)
            self._drain_done()
            self._commit(consumer, asynchronous=False)
            consumer.close()
            self.dead_letters.close()
            self.store.close()
            log.info("stopped")
